package promql

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The reasons a query is refused. They are stable: logs, the
// tenantgate_authz_denied_total and tenantgate_query_rejected_total metrics
// and the audit trail key on them.
const (
	// ReasonInvalidQuery: the query or a match[] selector does not parse.
	ReasonInvalidQuery = "invalid_query"
	// ReasonTenantNotReadable: a matcher on the tenant label names (or its
	// regex lists) a tenant the caller may not read, or the empty value.
	ReasonTenantNotReadable = "tenant_not_readable"
	// ReasonTenantMatcherNegative: a != or !~ matcher on the tenant label,
	// which matches every tenant but the ones it names.
	ReasonTenantMatcherNegative = "tenant_matcher_negative"
	// ReasonTenantRegexUnprovable: a =~ matcher on the tenant label whose
	// regex cannot be shown to match only a short list of tenant IDs.
	ReasonTenantRegexUnprovable = "tenant_regex_unprovable"
	// ReasonInfoUnenforceable: info() without data-label matchers, which
	// would join info series of every tenant by job and instance.
	ReasonInfoUnenforceable = "info_unenforceable"
)

// Error is a refused query. Forbidden errors (a tenant the caller may not
// read) are answered with 403, the others with 400.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Forbidden is true when the query reaches for tenants the caller may
	// not read.
	Forbidden bool
	// Msg explains the refusal to the caller.
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// maxRegexLanguage bounds how many strings a tenant regex may be expanded to
// before it is refused as unprovable.
const maxRegexLanguage = 4096

// ParserOptions are the options of the PromQL parser that tenantgate uses:
// the language a Thanos v0.42 querier accepts (experimental functions such
// as info(), the @ modifier and negative offsets, which Prometheus 3 always
// allows, and Thanos' xrate, xincrease and xdelta), and nothing it refuses
// (binop fill modifiers, unquoted UTF-8 names). A query that the upstream
// refuses anyway is refused there, with its own message.
func ParserOptions() parser.Options {
	fns := maps.Clone(parser.Functions)
	for _, name := range []string{"xrate", "xincrease", "xdelta"} {
		fns[name] = &parser.Function{Name: name, ArgTypes: []parser.ValueType{parser.ValueTypeMatrix}, ReturnType: parser.ValueTypeVector}
	}
	return parser.Options{EnableExperimentalFunctions: true, Functions: fns}
}

// Enforcer restricts PromQL expressions and series selectors to a set of
// tenants. It is built per request (the set depends on the caller) and is
// not safe for concurrent use.
type Enforcer struct {
	parser   parser.Parser
	label    string
	tenants  []string // sorted, unique
	injected *labels.Matcher
	// ownTenantMatchers counts the caller's matchers on the tenant label
	// that enforcement checked and kept beside the injected one.
	ownTenantMatchers int
	cache             *Cache // see UseCache
	cacheKey          string // the label and tenants, the prefix of keys
}

// NewEnforcer returns an enforcer that restricts every selector to the
// series whose label has one of the values tenants; with no tenants, to
// nothing at all. p parses the queries; see ParserOptions.
func NewEnforcer(p parser.Parser, label string, tenants []string) *Enforcer {
	ts := tenants
	if !sortedUnique(ts) {
		ts = slices.Clone(tenants)
		slices.Sort(ts)
		ts = slices.Compact(ts)
	}
	m := &labels.Matcher{Name: label, Type: labels.MatchEqual}
	switch len(ts) {
	case 0:
		// A class of no character: matches no value, the empty one
		// included (an empty alternation would match series without the
		// label).
		m.Type, m.Value = labels.MatchRegexp, `[^\x00-\x{10FFFF}]`
	case 1:
		m.Value = ts[0]
	default:
		// Built directly, not with labels.NewMatcher: nothing here matches
		// values, so the regex need not be compiled; it is only printed.
		quoted := make([]string, len(ts))
		for i, t := range ts {
			quoted[i] = regexp.QuoteMeta(t)
		}
		m.Type, m.Value = labels.MatchRegexp, strings.Join(quoted, "|")
	}
	return &Enforcer{parser: p, label: label, tenants: ts, injected: m}
}

func sortedUnique(ss []string) bool {
	for i := 1; i < len(ss); i++ {
		if ss[i-1] >= ss[i] {
			return false
		}
	}
	return true
}

// Matcher returns the matcher that the enforcer adds to every selector.
func (e *Enforcer) Matcher() *labels.Matcher { return e.injected }

// DefaultSelector returns the injected matcher alone as a series selector,
// such as {tenant="acme"}: the match[] of a series, labels or label values
// request that has none.
func (e *Enforcer) DefaultSelector() string {
	return (&parser.VectorSelector{LabelMatchers: []*labels.Matcher{e.injected}}).String()
}

// Query parses a PromQL expression, restricts it and prints it back.
func (e *Enforcer) Query(q string) (string, error) {
	return e.cached('q', q, e.query)
}

func (e *Enforcer) query(q string) (string, error) {
	if err := checkShape(q); err != nil {
		return "", err
	}
	expr, err := e.parser.ParseExpr(q)
	if err != nil {
		return "", &Error{Reason: ReasonInvalidQuery, Msg: err.Error()}
	}
	if err := e.Expr(expr); err != nil {
		return "", err
	}
	return expr.String(), nil
}

// Expr restricts every selector of expr in place: vector selectors
// anywhere, including those of range selectors, subqueries, function
// arguments (info()'s data-label selector too) and both sides of binary
// operations.
func (e *Enforcer) Expr(expr parser.Node) error {
	switch n := expr.(type) {
	case *parser.VectorSelector:
		ms, err := e.restrict(n.LabelMatchers)
		n.LabelMatchers = ms
		return err
	case *parser.MatrixSelector:
		return e.Expr(n.VectorSelector)
	case *parser.SubqueryExpr:
		return e.Expr(n.Expr)
	case *parser.ParenExpr:
		return e.Expr(n.Expr)
	case *parser.UnaryExpr:
		return e.Expr(n.Expr)
	case *parser.StepInvariantExpr:
		return e.Expr(n.Expr)
	case *parser.BinaryExpr:
		if err := e.Expr(n.LHS); err != nil {
			return err
		}
		return e.Expr(n.RHS)
	case *parser.AggregateExpr:
		if n.Param != nil {
			if err := e.Expr(n.Param); err != nil {
				return err
			}
		}
		return e.Expr(n.Expr)
	case *parser.Call:
		if n.Func != nil && n.Func.Name == "info" {
			if err := checkInfo(n); err != nil {
				return err
			}
		}
		for _, a := range n.Args {
			if err := e.Expr(a); err != nil {
				return err
			}
		}
		return nil
	case *parser.NumberLiteral, *parser.StringLiteral, *parser.DurationExpr, nil:
		return nil
	}
	// A node type this code does not know (a newer parser) might select
	// series in a way not handled here: refuse rather than guess.
	return &Error{Reason: ReasonInvalidQuery, Msg: fmt.Sprintf("unsupported expression %T in query", expr)}
}

// checkInfo refuses info() calls whose data-label selector is missing or
// names no data label. The engine fetches the info series (target_info by
// default) by the job and instance of the base series, whatever their
// tenant, and takes the data-label selector's matchers as the only other
// condition. The enforcer adds the tenant matcher to that selector, which
// restricts the fetch, but a tenant matcher in it also limits the added
// labels to the ones it names: for info(v) or info(v, {__name__="x"}) that
// would silently change the result, so those are refused with a hint.
func checkInfo(c *parser.Call) error {
	if len(c.Args) >= 2 {
		if vs, ok := c.Args[1].(*parser.VectorSelector); ok {
			for _, m := range vs.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					return nil
				}
			}
		}
	}
	return &Error{Reason: ReasonInfoUnenforceable, Msg: "info() needs a data-label selector naming the labels to add, " +
		`such as info(up, {k8s_cluster_name=~".+"}): without one it would join the info series of every tenant`}
}

// Selector parses a series selector (a match[] value), restricts it and
// prints it back. Unlike a query, a selector whose matchers all match the
// empty string ({} or {job=~".*"}) is accepted, as Thanos accepts it: once
// restricted it selects the caller's series.
func (e *Enforcer) Selector(s string) (string, error) {
	return e.cached('s', s, e.selector)
}

func (e *Enforcer) selector(s string) (string, error) {
	if err := checkShape(s); err != nil {
		return "", err
	}
	ms, err := e.parser.ParseMetricSelector(s)
	if err != nil && !onlyEmptyMatcherError(err) {
		return "", &Error{Reason: ReasonInvalidQuery, Msg: err.Error()}
	}
	if ms, err = e.restrict(ms); err != nil {
		return "", err
	}
	return (&parser.VectorSelector{LabelMatchers: ms}).String(), nil
}

// onlyEmptyMatcherError reports whether err is the parser's one complaint
// that a selector has no matcher that excludes the empty string.
func onlyEmptyMatcherError(err error) bool {
	var pe parser.ParseErrors
	return errors.As(err, &pe) && len(pe) == 1 &&
		strings.HasSuffix(pe[0].Err.Error(), "vector selector must contain at least one non-empty matcher")
}

// restrict checks the caller's own matchers on the tenant label and adds
// the injected one.
func (e *Enforcer) restrict(ms []*labels.Matcher) ([]*labels.Matcher, error) {
	present := false
	for _, m := range ms {
		if m == nil || m.Name != e.label {
			continue
		}
		if err := e.check(m); err != nil {
			return ms, err
		}
		e.ownTenantMatchers++
		if m.Type == e.injected.Type && m.Value == e.injected.Value {
			present = true
		}
	}
	if present {
		return ms, nil
	}
	return append(ms, e.injected), nil
}

// check decides whether a caller's matcher on the tenant label may stay:
// only when every value it can match is a readable tenant.
func (e *Enforcer) check(m *labels.Matcher) error {
	switch m.Type {
	case labels.MatchEqual:
		return e.readable(m, m.Value)
	case labels.MatchRegexp:
		lang, ok := regexLanguage(m.Value, maxRegexLanguage)
		if !ok {
			return &Error{Reason: ReasonTenantRegexUnprovable, Forbidden: true, Msg: fmt.Sprintf(
				"%s could match tenants you may not read: list the tenants instead, such as %s", m, e.hint())}
		}
		for _, v := range lang {
			if err := e.readable(m, v); err != nil {
				return err
			}
		}
		return nil
	}
	return &Error{Reason: ReasonTenantMatcherNegative, Forbidden: true, Msg: fmt.Sprintf(
		"%s matches every tenant but the ones it names, including tenants you may not read: list the tenants instead, such as %s", m, e.hint())}
}

func (e *Enforcer) readable(m *labels.Matcher, v string) error {
	if _, ok := slices.BinarySearch(e.tenants, v); ok {
		return nil
	}
	what := "tenant " + strconv.Quote(v)
	if v == "" {
		what = "series without a " + e.label + " label"
	}
	return &Error{Reason: ReasonTenantNotReadable, Forbidden: true, Msg: fmt.Sprintf(
		"%s matches %s, which you may not read (readable: %s)", m, what, strings.Join(e.tenants, ", "))}
}

// OwnTenantMatchers is how many matchers on the tenant label the caller
// wrote in the queries this enforcer rewrote; each was checked and the
// injected matcher was added beside it.
func (e *Enforcer) OwnTenantMatchers() int { return e.ownTenantMatchers }

// hint is a matcher on every readable tenant, for error messages.
func (e *Enforcer) hint() string {
	return e.injected.String()
}
