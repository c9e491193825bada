// Command chart draws one NAB series with the detector's expected band, NAB's labelled
// windows and the points where the detector alerts, as a PNG for docs/anomaly.md:
//
//	go run ./tools/anomalychart -nab ../shared/data/nab -file realKnownCause/nyc_taxi.csv \
//	    -from 2014-10-20 -to 2015-02-01 -out docs/anomaly-nyc_taxi.png
//
// Grey: the band (expected ± 4 scales); blue: the series; pale yellow: NAB's windows; red
// bars: alerts at the default threshold; grid lines: one a week.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/portpatrol/portpatrol/internal/anomaly"
	"github.com/portpatrol/portpatrol/internal/anomaly/nab"
)

func main() {
	dir := flag.String("nab", "../shared/data/nab", "NAB directory with data/ and labels/")
	file := flag.String("file", "realKnownCause/nyc_taxi.csv", "series under data/")
	out := flag.String("out", "docs/anomaly-nyc_taxi.png", "PNG to write")
	w := flag.Int("width", 1600, "width in pixels")
	h := flag.Int("height", 420, "height in pixels")
	from := flag.String("from", "", "draw from this time on (the detector still runs from the start)")
	to := flag.String("to", "", "draw up to this time")
	flag.Parse()
	if err := draw(*dir, *file, *out, *from, *to, *w, *h); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func draw(dir, file, out, from, to string, w, h int) error {
	c, err := nab.OpenCorpus(dir)
	if err != nil {
		return err
	}
	windows, ok := c.Windows[file]
	if !ok {
		return fmt.Errorf("%s: not in the corpus's labels", file)
	}
	rows, err := nab.ReadSeriesFile(filepath.Join(dir, "data", filepath.FromSlash(file)), nab.ReadOptions{KeepDisorder: true})
	if err != nil {
		return err
	}
	var tFrom, tTo time.Time
	if from != "" {
		if tFrom, err = nab.ParseTime(from); err != nil {
			return fmt.Errorf("-from: %w", err)
		}
	}
	if to != "" {
		if tTo, err = nab.ParseTime(to); err != nil {
			return fmt.Errorf("-to: %w", err)
		}
	}
	d := anomaly.New(anomaly.Config{})
	var res []anomaly.Result
	for i, r := range rows {
		if r.Skip != "" {
			continue
		}
		x, err := d.Observe(r.Time, r.Value)
		if err != nil {
			return err
		}
		if i >= 24 && !r.Time.Before(tFrom) && (tTo.IsZero() || !r.Time.After(tTo)) {
			res = append(res, x)
		}
	}
	if len(res) < 2 {
		return fmt.Errorf("%s: too few rows", file)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range res {
		lo, hi = math.Min(lo, r.Value), math.Max(hi, r.Value)
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	t0, t1 := res[0].Time, res[len(res)-1].Time
	span := t1.Sub(t0).Seconds()
	xOf := func(i int) int { return int(res[i].Time.Sub(t0).Seconds() / span * float64(w-1)) }
	yOf := func(v float64) int {
		y := int((hi - v) / (hi - lo) * float64(h-1))
		return max(0, min(h-1, y))
	}

	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, 0, w, 0, h, color.RGBA{255, 255, 255, 255})
	for _, win := range windows {
		a := int(win.Start.Sub(t0).Seconds() / span * float64(w-1))
		b := int(win.End.Sub(t0).Seconds() / span * float64(w-1))
		fill(img, max(a, 0), min(b+1, w), 0, h, color.RGBA{255, 244, 200, 255})
	}
	// Weekly grid.
	for t := t0.Truncate(24 * time.Hour); t.Before(t1); t = t.Add(7 * 24 * time.Hour) {
		if x := int(t.Sub(t0).Seconds() / span * float64(w-1)); x >= 0 {
			fill(img, x, x+1, 0, h, color.RGBA{225, 225, 225, 255})
		}
	}
	// Band: per pixel column, the widest band of its points (after warm-up).
	for i, r := range res {
		x := xOf(i)
		fill(img, x, x+1, yOf(r.Upper), yOf(r.Lower)+1, color.RGBA{200, 200, 210, 255})
	}
	// Series.
	for i := 1; i < len(res); i++ {
		line(img, xOf(i-1), yOf(res[i-1].Value), xOf(i), yOf(res[i].Value), color.RGBA{30, 80, 180, 255})
	}
	// Alerts.
	for i, r := range res {
		if r.Alert {
			x := xOf(i)
			fill(img, max(x-1, 0), min(x+2, w), 0, 14, color.RGBA{210, 30, 30, 255})
			fill(img, max(x-1, 0), min(x+2, w), yOf(r.Value)-4, yOf(r.Value)+5, color.RGBA{210, 30, 30, 255})
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fill(img *image.RGBA, x0, x1, y0, y1 int, c color.RGBA) {
	for x := x0; x < x1; x++ {
		for y := max(y0, 0); y < y1 && y < img.Rect.Dy(); y++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a straight line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(a int) int { return max(a, -a) }

func sign(a int) int {
	switch {
	case a > 0:
		return 1
	case a < 0:
		return -1
	}
	return 0
}
