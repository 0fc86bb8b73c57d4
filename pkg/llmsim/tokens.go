package llmsim

import (
	"math"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CountTokens approximates the token count of text deterministically and
// without a tokenizer, so that usage is reproducible and identical for
// streaming and non-streaming requests:
//
//   - a maximal run of letters and digits of L runes counts 1 + (L−1)/5
//     tokens (integer division: words of up to 5 runes are one token, 6–10
//     are two, …, close to BPE's ≈ 4 characters per token on English);
//   - every other non-space rune (punctuation, symbols) counts one token;
//   - white space counts nothing.
//
// Every token the simulator generates counts exactly one token under this
// rule, so re-counting an output gives its completion_tokens.
func CountTokens(text string) int {
	n, run := 0, 0
	for i := 0; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		i += size
		switch {
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'),
			r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			run++
			continue
		}
		n += wordTokens(run)
		run = 0
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n + wordTokens(run)
}

// wordTokens is the token count of an alphanumeric run of l runes.
func wordTokens(l int) int {
	if l == 0 {
		return 0
	}
	return 1 + (l-1)/5
}

// chatFramingTokens are added per chat message (role and separators) and
// chatPrimerTokens once per request (the assistant reply primer), as
// OpenAI's cookbook counts for its chat models.
const (
	chatFramingTokens = 4
	chatPrimerTokens  = 3
)

// vocabulary is the generated text: words of at most five letters with a
// leading space, and punctuation without one, so each entry is one token
// under CountTokens and none needs JSON escaping.
var vocabulary = func() [][]byte {
	words := strings.Fields(`the of and to in is that it for on with as was at by be this
		from or an are not but had his they you were her she which their all one
		there been has when who will more if no out so said what up its about into
		than them can only other new some could time these two may then do first
		any my now such like our over man me even most made after also did many
		model token batch cache queue light river stone cloud green quick brown
		plain north south field place world house point water small large early`)
	v := make([][]byte, 0, len(words)+4)
	for _, w := range words {
		v = append(v, []byte(" "+w))
	}
	for _, p := range []string{",", ".", ";", ","} {
		v = append(v, []byte(p))
	}
	return v
}()

// rng is a splitmix64 generator: tiny, fast and fully determined by its seed.
type rng struct{ s uint64 }

// mix64 is the splitmix64 finaliser, used to derive independent seeds.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// deriveSeed combines a seed with a stream number into a new seed.
func deriveSeed(seed, stream uint64) uint64 {
	return mix64(mix64(seed+0x9e3779b97f4a7c15) ^ (stream * 0xd1b54a32d192ed03))
}

// next returns the next 64 random bits.
func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 {
	return float64(r.next()>>11) / (1 << 53)
}

// intn returns a uniform value in [0, n) for n > 0 (Lemire's reduction).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// nextToken returns the text of the next generated token.
func (r *rng) nextToken() []byte {
	return vocabulary[r.intn(len(vocabulary))]
}

// naturalLength draws the length a request would have if it stopped at EOS:
// 1 + ⌊−mean·ln(1−u)⌋, an exponential draw with the given mean.
func naturalLength(r *rng, mean int) int {
	u := r.float()
	l := 1 + int(-float64(mean)*math.Log1p(-u))
	if l < 1 {
		l = 1
	}
	return l
}
