package scheduler

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrPlacement matches (errors.Is) every error saying that the fleet cannot
// carry a job's placement. Such an error is a *PlacementError whose text is
// the reason the runner fails the job with.
var ErrPlacement = errors.New("placement failed")

// ErrInvalidInput means the scheduler got input that no validated spec or
// fleet record produces: a bug in the caller, not a reason to blame the
// fleet.
var ErrInvalidInput = errors.New("invalid scheduler input")

// maxListed bounds the agent IDs and near misses a reason lists.
const maxListed = 8

// PlacementError says why the agents cannot carry a job or a shard.
type PlacementError struct {
	// Reason is the human-readable reason, e.g. "placement needs 4 agents
	// matching {gpu=h100, rack=r1}; 2 match (gpu-a, gpu-b); gpu-c is alive
	// but not connected". It is the error's text.
	Reason string
	// Selector is the placement's label selector; nil when it has none.
	Selector map[string]string
	// Wanted is how many agents the placement needed.
	Wanted int
	// Found is how many live matching agents there were.
	Found int
	// Level names the level that could not be placed, when one was at fault.
	Level string
	// Agent is the lost agent whose shard found no spare (Reassign).
	Agent string
}

var _ error = (*PlacementError)(nil)

// Error returns the reason.
func (e *PlacementError) Error() string {
	return e.Reason
}

// Is makes every PlacementError match ErrPlacement.
func (e *PlacementError) Is(target error) bool {
	return target == ErrPlacement
}

// invalidf wraps ErrInvalidInput with a message.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// formatSelector writes a selector as "{k1=v1, k2=v2}" in key order; "{}"
// when empty.
func formatSelector(sel map[string]string) string {
	parts := make([]string, 0, len(sel))
	for _, k := range sortedKeys(sel) {
		parts = append(parts, k+"="+sel[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// formatList joins at most limit items with sep and says how many more
// there are.
func formatList(items []string, sep string, limit int) string {
	if len(items) <= limit {
		return strings.Join(items, sep)
	}
	return strings.Join(items[:limit], sep) + sep + "and " + strconv.Itoa(len(items)-limit) + " more"
}

// joinReason appends the near misses (if any) to a reason, separated by
// "; ".
func joinReason(reason string, misses []string) string {
	if len(misses) == 0 {
		return reason
	}
	return reason + "; " + formatList(misses, "; ", maxListed)
}

// agentCount writes "1 agent" or "n agents".
func agentCount(n int) string {
	if n == 1 {
		return "1 agent"
	}
	return strconv.Itoa(n) + " agents"
}

// sortedKeys returns the map's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
