package promql

import (
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// format_query and parse_query read no data: the gateway answers them
// itself (Thanos query has neither), with the caller's query as written,
// not as enforced. They still need a metrics read grant, like every
// endpoint of the read API.

// formatQuery serves /api/v1/format_query: the query, pretty-printed.
func (h *Handler) formatQuery(w http.ResponseWriter, r *http.Request, _ *request) error {
	expr, err := h.parseParam(r)
	if err != nil {
		return err
	}
	writeSuccess(w, expr.Pretty(0), nil)
	return nil
}

// parseQuery serves /api/v1/parse_query: the query's syntax tree as JSON,
// in the shape Prometheus' API gives it (the one its UI's tree view reads).
func (h *Handler) parseQuery(w http.ResponseWriter, r *http.Request, _ *request) error {
	expr, err := h.parseParam(r)
	if err != nil {
		return err
	}
	writeSuccess(w, astJSON(expr), nil)
	return nil
}

func (h *Handler) parseParam(r *http.Request) (parser.Expr, error) {
	form, err := readForm(r, int64(h.cfg.MaxBodyBytes))
	if err != nil {
		return nil, err
	}
	q, err := singleQuery(form)
	if err != nil {
		return nil, err
	}
	if len(q) > int(h.cfg.MaxQueryBytes) {
		return nil, tooLong("query", len(q), int(h.cfg.MaxQueryBytes))
	}
	if err := checkShape(q); err != nil {
		return nil, paramError("query", err)
	}
	expr, err := h.parser.ParseExpr(q)
	if err != nil {
		return nil, paramError("query", &Error{Reason: ReasonInvalidQuery, Msg: err.Error()})
	}
	return expr, nil
}

// obj is a JSON object of the tree.
type obj = map[string]any

// astJSON renders a node the way Prometheus' parse_query does.
func astJSON(n parser.Node) any {
	switch n := n.(type) {
	case nil:
		return nil
	case *parser.AggregateExpr:
		return obj{"type": "aggregation", "op": n.Op.String(), "expr": astJSON(n.Expr), "param": astJSON(n.Param),
			"grouping": nonNil(n.Grouping), "without": n.Without}
	case *parser.BinaryExpr:
		var matching any
		if m := n.VectorMatching; m != nil {
			matching = obj{"card": m.Card.String(), "labels": nonNil(m.MatchingLabels), "on": m.On, "include": nonNil(m.Include),
				"fillValues": obj{"lhs": m.FillValues.LHS, "rhs": m.FillValues.RHS}}
		}
		return obj{"type": "binaryExpr", "op": n.Op.String(), "lhs": astJSON(n.LHS), "rhs": astJSON(n.RHS), "matching": matching, "bool": n.ReturnBool}
	case *parser.Call:
		args := make([]any, 0, len(n.Args))
		for _, a := range n.Args {
			args = append(args, astJSON(a))
		}
		return obj{"type": "call", "args": args,
			"func": obj{"name": n.Func.Name, "argTypes": n.Func.ArgTypes, "variadic": n.Func.Variadic, "returnType": n.Func.ReturnType}}
	case *parser.MatrixSelector:
		vs, _ := n.VectorSelector.(*parser.VectorSelector)
		if vs == nil {
			return nil
		}
		o := selectorJSON("matrixSelector", vs)
		o["range"], o["rangeExpr"] = n.Range.Milliseconds(), durationJSON(n.RangeExpr)
		return o
	case *parser.SubqueryExpr:
		return obj{"type": "subquery", "expr": astJSON(n.Expr), "range": n.Range.Milliseconds(), "rangeExpr": durationJSON(n.RangeExpr),
			"offset": n.OriginalOffset.Milliseconds(), "offsetExpr": durationJSON(n.OriginalOffsetExpr),
			"step": n.Step.Milliseconds(), "stepExpr": durationJSON(n.StepExpr), "timestamp": n.Timestamp, "startOrEnd": startOrEnd(n.StartOrEnd)}
	case *parser.DurationExpr:
		return durationJSON(n)
	case *parser.NumberLiteral:
		return obj{"type": "numberLiteral", "val": strconv.FormatFloat(n.Val, 'f', -1, 64)}
	case *parser.ParenExpr:
		return obj{"type": "parenExpr", "expr": astJSON(n.Expr)}
	case *parser.StringLiteral:
		return obj{"type": "stringLiteral", "val": n.Val}
	case *parser.UnaryExpr:
		return obj{"type": "unaryExpr", "op": n.Op.String(), "expr": astJSON(n.Expr)}
	case *parser.VectorSelector:
		return selectorJSON("vectorSelector", n)
	case *parser.StepInvariantExpr:
		return astJSON(n.Expr)
	}
	return nil
}

func selectorJSON(typ string, vs *parser.VectorSelector) obj {
	return obj{"type": typ, "name": vs.Name, "offset": vs.OriginalOffset.Milliseconds(), "offsetExpr": durationJSON(vs.OriginalOffsetExpr),
		"matchers": matchersJSON(vs.LabelMatchers), "timestamp": vs.Timestamp, "startOrEnd": startOrEnd(vs.StartOrEnd),
		"anchored": vs.Anchored, "smoothed": vs.Smoothed}
}

// durationJSON renders a duration expression (a range, step or offset).
func durationJSON(n parser.Expr) any {
	switch d := n.(type) {
	case nil:
		return nil
	case *parser.DurationExpr:
		if d == nil {
			return nil
		}
		return obj{"type": "durationExpr", "op": d.Op.String(), "lhs": durationJSON(d.LHS), "rhs": durationJSON(d.RHS), "wrapped": d.Wrapped}
	case *parser.NumberLiteral:
		if d == nil {
			return nil
		}
		return obj{"type": "numberLiteral", "val": strconv.FormatFloat(d.Val, 'f', -1, 64), "duration": d.Duration}
	}
	return astJSON(n)
}

func matchersJSON(ms []*labels.Matcher) []obj {
	out := make([]obj, 0, len(ms))
	for _, m := range ms {
		out = append(out, obj{"name": m.Name, "value": m.Value, "type": m.Type.String()})
	}
	return out
}

func startOrEnd(t parser.ItemType) any {
	switch t {
	case parser.START:
		return "start"
	case parser.END:
		return "end"
	}
	return nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
