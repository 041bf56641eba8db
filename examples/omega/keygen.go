package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"path/filepath"
	"strings"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/keyfile"
)

type keygenOpts struct{ out string }

func (o *keygenOpts) declare(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "out", "", "the private key file, NAME.pem; the public key is written beside it as NAME.pub (required)")
}

func keygenFlags(fs *flag.FlagSet) { new(keygenOpts).declare(fs) }

type keygenOutput struct {
	Status     string `json:"status"`
	Command    string `json:"command"`
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
	KeyID      string `json:"key_id"`
}

// publicKeyPath returns the public key file beside the private key file
// priv: the same name with the extension .pub.
func publicKeyPath(priv string) string {
	return strings.TrimSuffix(priv, filepath.Ext(priv)) + ".pub"
}

func runKeygen(args []string) ([]byte, error) {
	var o keygenOpts
	fs := newFlagSet("keygen")
	o.declare(fs)
	if err := parseFlags(fs, args, "out"); err != nil {
		return nil, err
	}
	pub := publicKeyPath(o.out)
	if pub == o.out {
		return nil, usageErrorf("keygen: --out %s ends in .pub, the public key's name; name the private key NAME.pem", o.out)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	// keyfile.Save creates both files exclusively: an existing key is never
	// replaced (fs.ErrExist, exit 50).
	if err := keyfile.Save(o.out, pub, priv); err != nil {
		return nil, err
	}
	id := omega.KeyID(priv.Public().(ed25519.PublicKey))
	return marshal(keygenOutput{"ok", "keygen", o.out, pub, hex.EncodeToString(id[:])}), nil
}
