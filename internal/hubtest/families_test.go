package hubtest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftc-dev/ftc/compiler/arch"
	"github.com/ftc-dev/ftc/internal/hubtest"
)

// familiesJSON is where the library tests read the family table.
var familiesJSON = filepath.Join("..", "..", "stdlib", "python", "libtests", "families.json")

// TestFamiliesJSONCurrent keeps stdlib/python/libtests/families.json
// equal to the family table and the stand-in configs
// (FTC_UPDATE_GOLDEN=1 rewrites it). test_families.py checks its claims
// against each profile's transformers.
func TestFamiliesJSONCurrent(t *testing.T) {
	configs := map[string]arch.Facts{}
	for _, r := range hubtest.Repos() {
		b, err := hubtest.Config(r)
		if err != nil {
			t.Fatal(err)
		}
		if configs[r], err = arch.FromConfigJSON(b); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	got := arch.JSON(configs)
	if os.Getenv("FTC_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(familiesJSON, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(familiesJSON)
	if err != nil {
		t.Fatalf("%v (run with FTC_UPDATE_GOLDEN=1 to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: refresh with FTC_UPDATE_GOLDEN=1 go test ./internal/hubtest", familiesJSON)
	}
}
