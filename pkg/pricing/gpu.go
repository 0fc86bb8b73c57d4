package pricing

import (
	"slices"
	"strings"
	"unicode"
)

// CanonicalGPU maps a GPU model name as NVML reports it or a person writes
// it to the catalog's model key, and reports whether the model is one the
// catalog knows. Matching ignores case and punctuation and accepts the
// usual aliases: "NVIDIA H100 80GB HBM3", "H100", "h100-sxm" and
// "H100-80GB" are all "H100-80GB"; "NVIDIA A100-SXM4-80GB" is
// "A100-80GB"; "NVIDIA H200" is "H200-141GB"; "NVIDIA L4" is "L4".
//
// The known models are A10G, A100-40GB, A100-80GB, B200-180GB, H100-80GB,
// H200-141GB, L4, L40S, RTX-PRO-4500-32GB, RTX-PRO-6000-96GB, T4 and
// V100-16GB. Any other name comes back as its words upper-cased and
// joined by "-" ("AMD Instinct MI300X" is "AMD-INSTINCT-MI300X"), so
// spellings that differ only in case and punctuation still match.
func CanonicalGPU(name string) (model string, known bool) {
	words := gpuWords(name)
	has := func(w string) bool { return slices.Contains(words, w) }
	mentions := func(s string) bool {
		return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(w, s) })
	}
	switch {
	case len(words) == 0:
		return "", false
	case has("GH200"), has("GB200"), has("GB300"):
		// Grace superchips: not the discrete H200/B200 boards.
	case has("H200"):
		return "H200-141GB", true
	case slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(w, "H100") }):
		return "H100-80GB", true
	case has("B200"):
		return "B200-180GB", true
	case has("A100") && mentions("40G"):
		return "A100-40GB", true
	case has("A100"):
		return "A100-80GB", true
	case has("L40S"):
		return "L40S", true
	case has("L4"):
		return "L4", true
	case has("A10G"):
		return "A10G", true
	case has("V100") && !mentions("32G"):
		return "V100-16GB", true
	case has("T4"):
		return "T4", true
	case hasRun(words, "RTX", "PRO", "6000"):
		return "RTX-PRO-6000-96GB", true
	case hasRun(words, "RTX", "PRO", "4500"):
		return "RTX-PRO-4500-32GB", true
	}
	return strings.Join(words, "-"), false
}

// gpuWords splits a GPU name into upper-case words, dropping the vendor
// and brand words that carry no model information.
func gpuWords(name string) []string {
	words := strings.FieldsFunc(strings.ToUpper(name), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	return slices.DeleteFunc(words, func(w string) bool { return w == "NVIDIA" || w == "TESLA" })
}

// hasRun reports whether run occurs in words as consecutive words.
func hasRun(words []string, run ...string) bool {
	for i := 0; i+len(run) <= len(words); i++ {
		if slices.Equal(words[i:i+len(run)], run) {
			return true
		}
	}
	return false
}
