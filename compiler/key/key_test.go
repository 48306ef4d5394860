package key

import "testing"

func TestCanonicalSortsKeys(t *testing.T) {
	type ab struct {
		B int `json:"b"`
		A int `json:"a"`
	}
	got, err := Canonical(ab{B: 2, A: 1})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"a":1,"b":2}` {
		t.Fatalf("Canonical = %s", got)
	}
	m, _ := Canonical(map[string]any{"b": 2, "a": 1})
	if string(m) != string(got) {
		t.Fatalf("struct and map encodings differ: %s vs %s", got, m)
	}
}

func TestKeySeparatesDomainsAndVersions(t *testing.T) {
	m := map[string]int{"x": 1}
	a, _ := Of("d1", 1, m)
	b, _ := Of("d2", 1, m)
	c, _ := Of("d1", 2, m)
	again, _ := Of("d1", 1, map[string]int{"x": 1})
	if a == b || a == c {
		t.Fatalf("keys collide across domains or versions: %s %s %s", a, b, c)
	}
	if a != again {
		t.Fatalf("same material, different keys: %s %s", a, again)
	}
	if len(a) != len("sha256:")+64 {
		t.Fatalf("malformed key %q", a)
	}
}

func TestKeyChangesWithContent(t *testing.T) {
	a, _ := Of("d", 1, map[string]float64{"lr": 1e-5})
	b, _ := Of("d", 1, map[string]float64{"lr": 2e-5})
	if a == b {
		t.Fatal("different materials gave one key")
	}
}
