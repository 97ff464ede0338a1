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
// is a function of the input alone, so the helpers' version (prepare's
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
