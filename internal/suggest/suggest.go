// Package suggest proposes the known word a typo most likely meant.
package suggest

// maxDistance is the largest edit distance still worth suggesting.
const maxDistance = 3

// DidYouMean returns " (did you mean K?)" for the known word K closest to
// word (edit distance at most 3; ties go to the alphabetically first), or ""
// when none is close.
func DidYouMean(word string, known []string) string {
	best, bestDist := "", maxDistance+1
	for _, k := range known {
		if d := distance(word, k); d < bestDist || (d == bestDist && k < best) {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// distance is the Levenshtein distance of a and b, by bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
