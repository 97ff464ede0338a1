package boardfs

import (
	"fmt"
	"slices"
)

// renameDefs renames the locals of every def in s's tree.
func renameDefs(s *stmt) error {
	if s.compound() && s.toks[0].text == "def" {
		return renameLocals(s)
	}
	for _, b := range s.body {
		if err := renameDefs(b); err != nil {
			return err
		}
	}
	return nil
}

// walk calls fn for s and every statement inside it.
func walk(s *stmt, fn func(*stmt) error) error {
	if err := fn(s); err != nil {
		return err
	}
	for _, b := range s.body {
		if err := walk(b, fn); err != nil {
			return err
		}
	}
	return nil
}

// renameLocals gives the parameters and locals of the def d one-letter
// names, skipping every other name d uses. Names an import binds keep
// theirs unless renaming ("import micropython as a") saves bytes.
func renameLocals(d *stmt) error {
	if len(d.toks) < 4 || d.toks[1].kind != tName || d.toks[2].text != "(" {
		return fmt.Errorf("line %d: a def the minifier cannot read", d.at)
	}
	var order []string // locals, by first binding
	bound := map[string]bool{}
	imported := map[string]bool{}
	bind := func(name string) {
		if !bound[name] {
			bound[name] = true
			order = append(order, name)
		}
	}
	// Parameters: names at depth 1 after '(' or ','.
	depth := 0
	for i := 2; i < len(d.toks); i++ {
		t := d.toks[i]
		switch t.text {
		case "(", "[", "{":
			depth++
			continue
		case ")", "]", "}":
			depth--
			continue
		}
		if t.kind != tName || isKeyword(t.text) {
			continue
		}
		if depth == 1 && (d.toks[i-1].text == "(" || d.toks[i-1].text == ",") {
			bind(t.text)
		} else {
			return fmt.Errorf("line %d: a name (%s) in a default value", d.at, t.text)
		}
	}
	uses := map[string]int{}
	err := walkBody(d, func(s *stmt) error {
		toks := s.toks
		switch toks[0].text {
		case "def", "class", "global", "nonlocal":
			return fmt.Errorf("line %d: %s inside a def", s.at, toks[0].text)
		case "import", "from":
			for _, n := range importBindings(toks) {
				if toks[n-1].text != "as" {
					imported[toks[n].text] = true // "import x" binds x itself
				}
				bind(toks[n].text)
			}
		}
		for i, t := range toks {
			if t.kind != tName || isKeyword(t.text) {
				if t.text == "lambda" {
					return fmt.Errorf("line %d: a lambda inside a def", s.at)
				}
				continue
			}
			if i > 0 && toks[i-1].text == "." {
				continue
			}
			uses[t.text]++
		}
		for _, n := range targets(toks) {
			bind(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Every name d reads that is not its own (globals, builtins, modules
	// imported without renaming) is taken.
	taken := map[string]bool{}
	for n := range uses {
		if !bound[n] {
			taken[n] = true
		}
	}
	for _, n := range order {
		// "import x" becomes "import x as a": worth it only when the
		// name is used enough to pay for " as a".
		if imported[n] && (len(n)-1)*(uses[n]-1) <= 5 {
			taken[n] = true
		}
	}
	names := map[string]string{}
	next := 0
	for _, n := range order {
		if taken[n] {
			continue
		}
		for {
			short := shortName(next)
			next++
			if !taken[short] && !isKeyword(short) {
				names[n] = short
				break
			}
		}
	}
	return walk(d, func(s *stmt) error {
		s.toks = applyNames(s.toks, names, s == d)
		return nil
	})
}

// walkBody calls fn for every statement inside d, not d itself.
func walkBody(d *stmt, fn func(*stmt) error) error {
	for _, b := range d.body {
		if err := walk(b, fn); err != nil {
			return err
		}
	}
	return nil
}

// importBindings returns the indexes of the names an import statement
// binds: the name after "as", or the imported name itself.
func importBindings(toks []token) []int {
	i := 0
	if toks[0].text == "from" {
		for i < len(toks) && toks[i].text != "import" {
			i++
		}
	}
	var out []int
	for i++; i < len(toks); i++ {
		if toks[i].kind != tName {
			continue
		}
		if i+2 < len(toks) && toks[i+1].text == "as" {
			out = append(out, i+2)
			i += 2
			continue
		}
		out = append(out, i)
	}
	return out
}

// targets returns the names a simple statement binds: the plain names
// before '=' or an augmented assignment at depth 0 ("a,b=", "n+="), after
// "for" up to "in" (loops and comprehensions), and after "as" (except,
// with).
func targets(toks []token) []string {
	var out []string
	if toks[0].text == "import" || toks[0].text == "from" {
		return nil
	}
	depth := 0
	for i, t := range toks {
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case "=", "+=", "-=", "*=", "/=", "//=", "%=", "&=", "|=", "^=", ">>=", "<<=", "**=":
			if depth != 0 {
				continue // a keyword argument
			}
			for j := 0; j < i; j++ {
				if toks[j].kind == tName && (j == 0 || toks[j-1].text == ",") && (toks[j+1].text == "," || j+1 == i) {
					out = append(out, toks[j].text)
				}
			}
		case "for":
			for j := i + 1; j < len(toks) && toks[j].text != "in"; j++ {
				if toks[j].kind == tName {
					out = append(out, toks[j].text)
				}
			}
		case "as":
			if i+1 < len(toks) && toks[i+1].kind == tName {
				out = append(out, toks[i+1].text)
			}
		}
	}
	return out
}

// applyNames renames the names of toks found in names: not attributes
// (after '.'), not keyword arguments in calls, and in imports only the
// bound name, adding "as" where the imported name itself is renamed.
func applyNames(toks []token, names map[string]string, header bool) []token {
	isImport := toks[0].text == "import" || toks[0].text == "from"
	var bindings []int
	if isImport {
		bindings = importBindings(toks)
	}
	var out []token
	depth := 0
	for i, t := range toks {
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		}
		short, ok := names[t.text]
		switch {
		case t.kind != tName || !ok, i > 0 && toks[i-1].text == ".":
		case isImport:
			if slices.Contains(bindings, i) {
				if i >= 1 && toks[i-1].text == "as" {
					t.text = short
				} else {
					out = append(out, t, token{tName, "as"})
					t.text = short
				}
			}
		case !header && depth > 0 && i+1 < len(toks) && toks[i+1].text == "=" && (toks[i-1].text == "(" || toks[i-1].text == ","):
			// A keyword argument names the callee's parameter.
		default:
			t.text = short
		}
		out = append(out, t)
	}
	return out
}

// shortName returns the n-th name of a, b, ... z, A ... Z, aa, ab ...
func shortName(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if n < len(letters) {
		return letters[n : n+1]
	}
	return shortName(n/len(letters)-1) + letters[n%len(letters):n%len(letters)+1]
}
