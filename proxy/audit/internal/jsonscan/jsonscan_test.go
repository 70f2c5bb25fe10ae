package jsonscan

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{}`, true}, {` [1, -2.5e+3, "a\u00e9\"", true, false, null, {"k": []}] `, true},
		{`{"a":1,}`, false}, {`[1,]`, false}, {`"abc`, false}, {`"a\x"`, false}, {"\"a\x01\"", false},
		{`01`, false}, {`1.`, false}, {`-`, false}, {`tru`, false}, {`{"a" 1}`, false}, {`{} {}`, false},
		{"\"\xff\"", false}, {`{"a":"\ud800"}`, true},
	} {
		if err := Validate([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestKeyIsAndStr(t *testing.T) {
	b := []byte(`{"request\u004fbject": "x\n\u00e9", "plain": "y"}`)
	var keys []string
	_, err := ObjectEach(b, 0, 0, func(k []byte, esc bool, vs, ve int) error {
		s, _ := Str(b, vs, ve)
		if KeyIs(k, esc, "requestObject") {
			keys = append(keys, "requestObject="+s)
		}
		if KeyIs(k, esc, "plain") {
			keys = append(keys, "plain="+s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "requestObject=x\né" || keys[1] != "plain=y" {
		t.Fatalf("got %q", keys)
	}
}

func TestAppendQuoteRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "ctl\x00\x1f<>&", "é\u2028", "bad\xff"} {
		q := AppendQuote(nil, s)
		var got string
		if err := json.Unmarshal(q, &got); err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		want, _ := json.Marshal(s)
		var w string
		_ = json.Unmarshal(want, &w)
		if got != w {
			t.Errorf("AppendQuote(%q) decodes to %q, want %q", s, got, w)
		}
	}
}

// FuzzValidate checks that the scanner accepts exactly what encoding/json
// accepts, and that unescaping a string agrees with it.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"\ud83d\ude00"`, `[1e5,-0.5]`, `{"a":"\u00"}`, `"\ud800\u0041"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := Validate(b)
		// The scanner is stricter than encoding/json in one way: it refuses
		// invalid UTF-8, which encoding/json would turn into U+FFFD.
		if (err == nil) != json.Valid(b) && !(err != nil && !utf8.Valid(b)) {
			t.Fatalf("Validate(%q) = %v, json.Valid = %v", b, err, json.Valid(b))
		}
		if err != nil {
			return
		}
		i := SkipWS(b, 0)
		if KindOf(b, i) == String {
			end, _, _ := ScanString(b, i)
			got, ok := Str(b, i, end)
			var want string
			if uerr := json.Unmarshal(b, &want); uerr != nil || !ok || got != want {
				t.Fatalf("Str(%q) = %q, %v; encoding/json: %q, %v", b, got, ok, want, uerr)
			}
		}
	})
}
