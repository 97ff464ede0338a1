package boardfs

import (
	"fmt"
	"slices"
	"strings"
)

// minify turns the readable Python of py/*.py into what goes on the wire,
// the way mpremote shrinks its helpers before sending them: comments and
// blank lines go, indentation is one space a level, spaces stay only
// between two word characters, consecutive simple statements share a line
// (a;b), a block of simple statements follows its header (if x:a;b), and
// the parameters and locals of each def get one-letter names. The output
// is a function of the input alone, so the helpers' version (Prepare's
// _fb) changes only when their source does.
//
// It understands the Python the helpers are written in, and refuses what
// it cannot rename safely: a def or lambda inside a def, global and
// nonlocal, names in default values, triple quotes, tabs and backslash
// continuations.
// Names bound only inside a comprehension are renamed throughout the def,
// so a comprehension must not reuse the name of a global the def reads.
func minify(src string) (string, error) {
	lines, err := logicalLines(src)
	if err != nil {
		return "", err
	}
	stmts, err := nest(lines)
	if err != nil {
		return "", err
	}
	for _, s := range stmts {
		if err := renameDefs(s); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	emit(&b, stmts, 0)
	return b.String(), nil
}

type tokKind int

const (
	tName tokKind = iota
	tNumber
	tString
	tOp
)

type token struct {
	kind tokKind
	text string
}

// pyLine is one logical line: its indentation, its tokens, and where it
// starts in the source, for messages.
type pyLine struct {
	indent int
	toks   []token
	at     int
}

// stmt is one statement; a compound one (its tokens end with ':') has a
// body.
type stmt struct {
	toks []token
	body []*stmt
	at   int
}

func (s *stmt) compound() bool {
	return len(s.toks) > 0 && s.toks[len(s.toks)-1].text == ":"
}

var pyKeywords = []string{
	"False", "None", "True", "and", "as", "assert", "async", "await", "break",
	"class", "continue", "def", "del", "elif", "else", "except", "finally",
	"for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
	"not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
}

func isKeyword(s string) bool { return slices.Contains(pyKeywords, s) }

// compoundStarts are the keywords that open a compound statement.
var compoundStarts = []string{"if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def", "class"}

// ops lists Python's operators and delimiters, longest first, so that
// tokenizing takes the longest that matches.
var ops = []string{
	"**=", "//=", ">>=", "<<=",
	"**", "//", ">>", "<<", "<=", ">=", "==", "!=", "->",
	"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=",
	"+", "-", "*", "/", "%", "&", "|", "^", "~", "<", ">",
	"(", ")", "[", "]", "{", "}", ",", ":", ".", ";", "=", "@",
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// logicalLines tokenizes src into logical lines, joining the physical
// lines of an expression that spans brackets.
func logicalLines(src string) ([]pyLine, error) {
	var (
		out   []pyLine
		cur   *pyLine
		depth int
	)
	for n, text := range strings.Split(src, "\n") {
		at := n + 1
		if strings.ContainsRune(text, '\t') {
			return nil, fmt.Errorf("line %d: a tab", at)
		}
		i := 0
		if cur == nil {
			for i < len(text) && text[i] == ' ' {
				i++
			}
			if i == len(text) || text[i] == '#' {
				continue // blank or comment only
			}
			cur = &pyLine{indent: i, at: at}
		}
		for i < len(text) {
			c := text[i]
			switch {
			case c == ' ':
				i++
			case c == '#':
				i = len(text)
			case c == '\\':
				return nil, fmt.Errorf("line %d: a backslash continuation", at)
			case c == '\'' || c == '"' || isStringPrefix(text[i:]):
				end, err := stringEnd(text, i)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", at, err)
				}
				cur.toks = append(cur.toks, token{tString, text[i:end]})
				i = end
			case c >= '0' && c <= '9':
				j := i
				for j < len(text) && (isWordByte(text[j]) || text[j] == '.') {
					j++
				}
				cur.toks = append(cur.toks, token{tNumber, text[i:j]})
				i = j
			case isWordByte(c):
				j := i
				for j < len(text) && isWordByte(text[j]) {
					j++
				}
				cur.toks = append(cur.toks, token{tName, text[i:j]})
				i = j
			default:
				op := ""
				for _, o := range ops {
					if strings.HasPrefix(text[i:], o) {
						op = o
						break
					}
				}
				if op == "" {
					return nil, fmt.Errorf("line %d: unexpected %q", at, c)
				}
				switch op {
				case "(", "[", "{":
					depth++
				case ")", "]", "}":
					depth--
				}
				cur.toks = append(cur.toks, token{tOp, op})
				i += len(op)
			}
		}
		if depth == 0 && cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: brackets left open", cur.at)
	}
	return out, nil
}

// isStringPrefix reports whether s starts with a string literal's prefix
// (b'..', r'..', rb'..').
func isStringPrefix(s string) bool {
	for _, p := range []string{"b", "r", "u", "rb", "br", "B", "R", "U", "Rb", "bR", "RB", "BR", "rB", "Br"} {
		if len(s) > len(p) && s[:len(p)] == p && (s[len(p)] == '\'' || s[len(p)] == '"') {
			return true
		}
	}
	return false
}

// stringEnd returns the index just past the string literal at text[i:].
func stringEnd(text string, i int) (int, error) {
	for text[i] != '\'' && text[i] != '"' {
		i++
	}
	q := text[i]
	if strings.HasPrefix(text[i:], strings.Repeat(string(q), 3)) {
		return 0, fmt.Errorf("a triple-quoted string (write comments instead)")
	}
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			j++
		case q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("a string left open")
}

// nest builds the statement tree from indentation.
func nest(lines []pyLine) ([]*stmt, error) {
	type level struct {
		indent int
		stmts  *[]*stmt
	}
	var top []*stmt
	stack := []level{{0, &top}}
	var last *stmt
	for _, l := range lines {
		line, err := statements(l)
		if err != nil {
			return nil, err
		}
		cur := stack[len(stack)-1]
		if last != nil && last.compound() && len(last.body) == 0 && l.indent <= cur.indent {
			return nil, fmt.Errorf("line %d: expected an indented block", l.at)
		}
		switch {
		case l.indent > cur.indent:
			if last == nil || !last.compound() || len(last.body) > 0 {
				return nil, fmt.Errorf("line %d: unexpected indent", l.at)
			}
			stack = append(stack, level{l.indent, &last.body})
		case l.indent < cur.indent:
			for len(stack) > 1 && stack[len(stack)-1].indent > l.indent {
				stack = stack[:len(stack)-1]
			}
			if stack[len(stack)-1].indent != l.indent {
				return nil, fmt.Errorf("line %d: indentation matches no outer block", l.at)
			}
		}
		blk := stack[len(stack)-1].stmts
		*blk = append(*blk, line...)
		last = line[len(line)-1]
	}
	if last != nil && last.compound() && len(last.body) == 0 {
		return nil, fmt.Errorf("line %d: expected an indented block", last.at)
	}
	return top, nil
}

// statements splits a logical line into its statements: simple ones
// apart at ';', or one compound statement whose body may follow its
// header on the line ("if x:a;b").
func statements(l pyLine) ([]*stmt, error) {
	toks := l.toks
	if toks[0].kind == tName && slices.Contains(compoundStarts, toks[0].text) {
		colon := headerColon(toks)
		if colon < 0 {
			return nil, fmt.Errorf("line %d: %s without its ':'", l.at, toks[0].text)
		}
		s := &stmt{toks: toks[:colon+1], at: l.at}
		if colon+1 < len(toks) {
			for _, part := range splitAt(toks[colon+1:], ";") {
				if part[0].kind == tName && slices.Contains(compoundStarts, part[0].text) {
					return nil, fmt.Errorf("line %d: a compound statement after a ':'", l.at)
				}
				s.body = append(s.body, &stmt{toks: part, at: l.at})
			}
		}
		return []*stmt{s}, nil
	}
	var out []*stmt
	for _, part := range splitAt(toks, ";") {
		out = append(out, &stmt{toks: part, at: l.at})
	}
	return out, nil
}

// headerColon returns the index of the ':' that ends a compound
// statement's header: the first at depth 0 that no lambda claims.
func headerColon(toks []token) int {
	depth, lambdas := 0, 0
	for i, t := range toks {
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case "lambda":
			if depth == 0 {
				lambdas++
			}
		case ":":
			if depth > 0 {
				continue
			}
			if lambdas > 0 {
				lambdas--
				continue
			}
			return i
		}
	}
	return -1
}

// splitAt splits toks at sep at depth 0, dropping empty parts.
func splitAt(toks []token, sep string) [][]token {
	var out [][]token
	depth, start := 0, 0
	for i, t := range toks {
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case sep:
			if depth == 0 {
				if i > start {
					out = append(out, toks[start:i])
				}
				start = i + 1
			}
		}
	}
	if start < len(toks) {
		out = append(out, toks[start:])
	}
	return out
}

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

// emit writes stmts at depth, joining simple statements with ';'.
func emit(b *strings.Builder, stmts []*stmt, depth int) {
	for i := 0; i < len(stmts); {
		b.WriteString(strings.Repeat(" ", depth))
		s := stmts[i]
		if s.compound() {
			writeToks(b, s.toks)
			if allSimple(s.body) {
				writeSimple(b, s.body)
				b.WriteByte('\n')
			} else {
				b.WriteByte('\n')
				emit(b, s.body, depth+1)
			}
			i++
			continue
		}
		j := i
		for j < len(stmts) && !stmts[j].compound() {
			j++
		}
		writeSimple(b, stmts[i:j])
		b.WriteByte('\n')
		i = j
	}
}

func allSimple(stmts []*stmt) bool {
	for _, s := range stmts {
		if s.compound() {
			return false
		}
	}
	return true
}

func writeSimple(b *strings.Builder, stmts []*stmt) {
	for i, s := range stmts {
		if i > 0 {
			b.WriteByte(';')
		}
		writeToks(b, s.toks)
	}
}

// writeToks writes toks with a space only where two would otherwise run
// together: between word characters (a name, a number, a keyword, a b”
// prefix), and between operators that would make another ("* *").
func writeToks(b *strings.Builder, toks []token) {
	for i, t := range toks {
		if i > 0 {
			prev := toks[i-1].text
			p, n := prev[len(prev)-1], t.text[0]
			switch {
			case isWordByte(p) && isWordByte(n):
				b.WriteByte(' ')
			case toks[i-1].kind == tOp && t.kind == tOp && slices.Contains(ops, prev+t.text[:1]):
				b.WriteByte(' ')
			}
		}
		b.WriteString(t.text)
	}
}
