// Package report renders self-contained HTML reports for benchmark and
// recommendation jobs.
//
// A report is a single report.html file with inline CSS and inline SVG
// charts: it has no JavaScript and references no external assets, so it can
// be opened straight from the job's output location (a local directory or a
// downloaded S3 object) in any browser, and it prints well.
//
// Callers convert their job state into the plain input types of this package
// ([Benchmark] and [Recommendation]) and call [WriteBenchmark] or
// [WriteRecommendation]. All user-supplied text (job names, ARNs, candidate
// names, reasons, notes, environment variables, log lines) is escaped by
// html/template, both in the HTML and inside the SVG charts. Values that are
// NaN or ±Inf are shown as "—" in tables and are left out of charts.
package report
