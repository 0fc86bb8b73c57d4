package report

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// browserNames are the headless browsers the screenshot test can use.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome"}

func findBrowser() string {
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestScreenshot renders each report with headless Chromium and checks that
// the screenshot is a real, non-blank PNG. Set PERFLEET_REPORT_SAMPLES=<dir>
// to keep the screenshots.
func TestScreenshot(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH: install the chromium package " +
			"(apt-get install -y chromium) to run the report screenshot test")
	}
	reports := []struct {
		name   string
		render func(io.Writer) error
	}{
		{"benchmark", func(w io.Writer) error { return WriteBenchmark(w, sampleBenchmark()) }},
		{"recommendation", func(w io.Writer) error { return WriteRecommendation(w, sampleRecommendation()) }},
		{"recommendation-stress", func(w io.Writer) error { return WriteRecommendation(w, stressRecommendation()) }},
		{"benchmark-empty", func(w io.Writer) error { return WriteBenchmark(w, Benchmark{JobName: "empty"}) }},
	}
	for _, rep := range reports {
		t.Run(rep.name, func(t *testing.T) {
			dir := t.TempDir()
			page := filepath.Join(dir, "report.html")
			shot := filepath.Join(dir, "screenshot.png")
			var buf bytes.Buffer
			if err := rep.render(&buf); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, browser,
				"--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
				"--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
				"--screenshot="+shot, "--window-size=1280,2000", "file://"+page)
			out, runErr := cmd.CombinedOutput()

			data, err := os.ReadFile(shot)
			if err != nil {
				t.Fatalf("no screenshot (browser error %v): %v\n%s", runErr, err, out)
			}
			if len(data) < 8<<10 {
				t.Fatalf("screenshot is only %d bytes\n%s", len(data), out)
			}
			img, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("screenshot does not decode as PNG: %v", err)
			}
			bounds := img.Bounds()
			if bounds.Dx() < 640 || bounds.Dy() < 640 {
				t.Fatalf("screenshot is %v", bounds)
			}
			colours := map[[4]uint32]bool{}
			for y := bounds.Min.Y; y < bounds.Max.Y && len(colours) < 1000; y += 3 {
				for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
					r, g, b, a := img.At(x, y).RGBA()
					colours[[4]uint32{r, g, b, a}] = true
				}
			}
			if len(colours) <= 1 {
				t.Fatalf("screenshot is blank: %d distinct colour(s)", len(colours))
			}
			t.Logf("%s: %d bytes, %v, at least %d colours", rep.name, len(data), bounds.Size(), len(colours))
			if keep := os.Getenv("PERFLEET_REPORT_SAMPLES"); keep != "" {
				if err := os.MkdirAll(keep, 0o755); err == nil {
					_ = os.WriteFile(filepath.Join(keep, rep.name+".png"), data, 0o644)
				}
			}
		})
	}
}
