package omega

import (
	"maps"
	"testing"

	"pgregory.net/rapid"
)

// TestFlightTable runs random operations on a flightTable and on a Go map
// side by side, with the real hash and with hashes that collide (all keys,
// or most), which exercise long probe runs and every case of the backward
// shift that deletion does.
func TestFlightTable(t *testing.T) {
	hashes := map[string]func(EventID, uint64, uint64) uint64{
		"keyed":    idHash,
		"constant": func(EventID, uint64, uint64) uint64 { return 42 },
		"low bits": func(id EventID, _, _ uint64) uint64 { return id.Lo & 7 << 60 },
		"wraps":    func(id EventID, _, _ uint64) uint64 { return 62 + id.Lo%5 },
	}
	for name, hash := range hashes {
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				ft := newFlightTable[EventID, int](hash)
				model := map[EventID]int{}
				key := rapid.Custom(func(t *rapid.T) EventID {
					return EventID{Lo: rapid.Uint64Range(0, 200).Draw(t, "key")}
				})
				n := rapid.IntRange(1, 2000).Draw(t, "ops")
				for range n {
					k := key.Draw(t, "k")
					switch op := rapid.IntRange(0, 3).Draw(t, "op"); op {
					case 0:
						(*ft.Ref(k))++
						model[k]++
					case 1:
						_, in := model[k]
						if got := ft.Delete(k); got != in {
							t.Fatalf("Delete(%v) = %v, want %v", k, got, in)
						}
						delete(model, k)
					case 2:
						v := rapid.Int().Draw(t, "v")
						ft.Put(k, v)
						model[k] = v
					case 3:
						want, in := model[k]
						if got, ok := ft.Get(k); ok != in || got != want || ft.Has(k) != in {
							t.Fatalf("Get(%v) = %d, %v; want %d, %v", k, got, ok, want, in)
						}
					}
					if ft.Len() != len(model) {
						t.Fatalf("Len = %d, want %d", ft.Len(), len(model))
					}
				}
				if got := maps.Collect(ft.All()); !maps.Equal(got, model) {
					t.Fatalf("All = %v, want %v", got, model)
				}
				for k, want := range model {
					if got, ok := ft.Get(k); !ok || got != want {
						t.Fatalf("Get(%v) = %d, %v at the end; want %d", k, got, ok, want)
					}
				}
			})
		})
	}
}

// TestFlightTableShrinks checks that a table emptied after a burst gives
// back the memory beyond what it keeps.
func TestFlightTableShrinks(t *testing.T) {
	ft := newFlightTable[Hash, *Event](digestHash)
	var ds []Hash
	for i := range 100000 {
		d := PayloadHash([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		ds = append(ds, d)
		ft.Put(d, nil)
	}
	if ft.Len() != len(ds) || len(ft.slots) < 2*len(ds) {
		t.Fatalf("%d keys in %d slots after %d puts", ft.Len(), len(ft.slots), len(ds))
	}
	for _, d := range ds {
		if !ft.Delete(d) {
			t.Fatalf("Delete(%v) found nothing", d)
		}
	}
	if ft.Len() != 0 || len(ft.slots) != flightKeepSlots {
		t.Fatalf("%d keys in %d slots after deleting all, want 0 in %d", ft.Len(), len(ft.slots), flightKeepSlots)
	}
}
