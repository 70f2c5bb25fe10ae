package filter

import (
	"net/url"
	"slices"

	"k8s.io/apiserver/pkg/apis/audit"
	auditinternal "k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/tenantgate/tenantgate/proxy/audit/internal/jsonscan"
)

// levels orders audit levels; an unknown level ranks highest, so that it is
// always downgraded to what the policy asks.
var levels = map[string]int{"None": 0, "Metadata": 1, "Request": 2, "RequestResponse": 3}

func levelRank(l string) int {
	if r, ok := levels[l]; ok {
		return r
	}
	return 4
}

// policyFilter applies an audit.k8s.io/v1 Policy the way kube-apiserver
// does: the first matching rule gives the level and the omitted stages.
// Events at a higher level than the rule's lose the bodies that level
// excludes; events at level None or in an omitted stage are dropped.
type policyFilter struct {
	eval auditinternal.PolicyRuleEvaluator
}

// LoadPolicy reads an audit.k8s.io Policy file.
func loadPolicy(path string) (*policyFilter, error) {
	p, err := policy.LoadPolicyFromFile(path)
	if err != nil {
		return nil, err
	}
	return &policyFilter{eval: policy.NewPolicyRuleEvaluator(p)}, nil
}

func (f *policyFilter) apply(e *Event) {
	attrs := authorizer.AttributesRecord{
		User:            &user.DefaultInfo{Name: e.Username, Groups: e.groups()},
		Verb:            e.Verb,
		Namespace:       e.ObjectRef.Namespace,
		APIGroup:        e.ObjectRef.APIGroup,
		APIVersion:      e.ObjectRef.APIVersion,
		Resource:        e.ObjectRef.Resource,
		Subresource:     e.ObjectRef.Subresource,
		Name:            e.ObjectRef.Name,
		ResourceRequest: e.ObjectRef.Present,
	}
	if !e.ObjectRef.Present {
		attrs.Path = e.RequestURI
		if u, err := url.ParseRequestURI(e.RequestURI); err == nil {
			attrs.Path = u.Path
		}
	}
	rc := f.eval.EvaluatePolicyRule(attrs)
	switch {
	case rc.Level == audit.LevelNone:
		e.drop = "policy_level_none"
		return
	case slices.Contains(rc.OmitStages, audit.Stage(e.Stage)):
		e.drop = "policy_omit_stage"
		return
	}
	if levelRank(string(rc.Level)) < levelRank(e.Level) {
		e.newLevel = string(rc.Level)
	}
	e.omitMF = rc.OmitManagedFields
}

// groups returns user.groups.
func (e *Event) groups() []string {
	if !e.user.ok() || jsonscan.KindOf(e.Raw, e.user.s) != jsonscan.Object {
		return nil
	}
	var out []string
	_, _ = jsonscan.ObjectEach(e.Raw, e.user.s, 1, func(k []byte, esc bool, s, t int) error {
		if !jsonscan.KeyIs(k, esc, "groups") || jsonscan.KindOf(e.Raw, s) != jsonscan.Array {
			return nil
		}
		_, err := jsonscan.ArrayEach(e.Raw, s, 2, func(vs, ve int) error {
			if g, ok := jsonscan.Str(e.Raw, vs, ve); ok {
				out = append(out, g)
			}
			return nil
		})
		return err
	})
	return out
}
