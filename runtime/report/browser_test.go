package report

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ftc-dev/ftc/internal/needs"
)

// The report as a person sees it: rendered by a real browser, headless.
// FTC_REPORT_SCREENSHOT=path keeps the screenshot.

const shotW, shotH = 1280, 1800

// consoleLine is how chromium --enable-logging=stderr logs a message of
// the page's console (errors, uncaught exceptions, refused loads).
var consoleLine = regexp.MustCompile(`(?m)^.*:CONSOLE[:(].*$`)

// screenshot renders page in chromium and returns the PNG and what the
// page wrote to its console.
func screenshot(t *testing.T, chromium, page string) ([]byte, []string) {
	t.Helper()
	dir := t.TempDir()
	html := filepath.Join(dir, "report.html")
	if err := os.WriteFile(html, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-first-run", "--disable-extensions",
		// offline: no name resolves, so nothing could be fetched
		"--host-resolver-rules=MAP * ~NOTFOUND",
		"--enable-logging=stderr", "--v=0", "--hide-scrollbars",
		"--screenshot="+shot, "--window-size=1280,1800", "file://"+html)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v (%v)\n%s", err, ctx.Err(), out.String())
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out.String())
	}
	return png, consoleLine.FindAllString(out.String(), -1)
}

func TestReportInAHeadlessBrowser(t *testing.T) {
	chromium := needs.Program(t, "chromium", "apt-get install chromium")

	// The console is read from chromium's log: a page with errors shows
	// them there (else the check below would pass on any page).
	_, console := screenshot(t, chromium, `<!doctype html><p>x</p><script>console.error("bad"); undefinedFunction();</script>`)
	if len(console) != 2 {
		t.Fatalf("a page with two console errors logged %d: %q (has chromium's log format changed?)", len(console), console)
	}

	b, console := screenshot(t, chromium, string(Render(fakeRun(t))))
	for _, l := range console {
		t.Errorf("console: %s", l)
	}
	if p := os.Getenv("FTC_REPORT_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() != shotW || r.Dy() != shotH {
		t.Fatalf("the screenshot is %dx%d, want %dx%d", r.Dx(), r.Dy(), shotW, shotH)
	}
	// Not blank: the colours the page draws are there, each in an area
	// of its own size.
	count := func(c color.RGBA) int {
		n := 0
		r := img.Bounds()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				if near(img.At(x, y), c) {
					n++
				}
			}
		}
		return n
	}
	for _, want := range []struct {
		what   string
		colour color.RGBA
		min    int
	}{
		{"the table's header", color.RGBA{0xf3, 0xf4, 0xf6, 0xff}, 10000},
		{"the stage graph's boxes of stages that ran", color.RGBA{0xda, 0xfb, 0xe1, 0xff}, 5000},
		{"the stage graph's box of the cached stage", color.RGBA{0xdd, 0xf4, 0xff, 0xff}, 3000},
		{"the curves", color.RGBA{0x1f, 0x6f, 0xeb, 0xff}, 1000},
	} {
		n := count(want.colour)
		if n < want.min {
			t.Errorf("%s: %d pixel(s) of %v in the screenshot, want at least %d", want.what, n, want.colour, want.min)
		}
		t.Logf("%s: %d pixel(s)", want.what, n)
	}
	if n := distinct(img); n < 50 {
		t.Errorf("the screenshot has %d colours: blank?", n)
	}
}

func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, w uint8) bool { x := int(a>>8) - int(w); return x >= -4 && x <= 4 }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

func distinct(img image.Image) int {
	seen := map[color.RGBA]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(cr >> 8), uint8(cg >> 8), uint8(cb >> 8), 0xff}] = true
		}
	}
	return len(seen)
}
