//! Label and field selectors, as used in `?labelSelector=` / `?fieldSelector=` query parameters
//! and in the `selector` fields of workload objects.
//!
//! * [`LabelSelector`] parses the Kubernetes label-selector syntax
//!   (`tier in (frontend, backend), !canary, env!=prod`), converts API
//!   `LabelSelector`s (`matchLabels` + `matchExpressions`), matches label sets and prints the
//!   canonical form (requirements sorted by key).
//! * [`FieldSelector`] parses `metadata.name=foo,status.phase!=Running` with Kubernetes'
//!   backslash escaping and matches against any object through a lookup closure.
//!
//! An empty selector of either kind matches everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

use crate::validation::{
    FieldError, FieldPath, aggregate_message, is_qualified_name, is_valid_label_value, quote,
};

/// Why a selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectorError {
    /// A requirement of a label-selector string is malformed or invalid; the text says where
    /// (`found '(', expected: in, notin, =, ==, !=, gt, lt`) or what (`key: Invalid value: ...`).
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A label-selector string has something other than `,` or the end after a requirement.
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        /// The text found (`end of string` at the end).
        found: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A requirement built from parts (an API selector, [`Requirement::new`]) is invalid.
    #[error("{}", aggregate_message(.0))]
    InvalidRequirement(Vec<FieldError>),
    /// An API selector's `matchExpressions` uses an operator other than `In`, `NotIn`, `Exists`
    /// and `DoesNotExist`.
    #[error("{} is not a valid label selector operator", quote(.0))]
    UnknownOperator(String),
    /// A field-selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidFieldTerm {
        /// The whole selector.
        selector: String,
        /// The term that could not be understood.
        term: String,
    },
    /// A field-selector value has a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// A field-selector value has an unescaped `,` or `=`.
    #[error("invalid field selector: unescaped character in value: {0}")]
    UnescapedCharacter(char),
    /// A field selector uses a field the resource does not support
    /// (see [`FieldSelector::check_supported`]).
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

// ---------------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------------

/// The operator of a label-selector [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key=value`.
    Equals,
    /// `key==value` (same meaning as `=`).
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>5`: the label is present and its integer value is greater.
    GreaterThan,
    /// `key<5`: the label is present and its integer value is smaller.
    LessThan,
}

impl Operator {
    /// The operator's Kubernetes name (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`, `gt`,
    /// `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One condition of a [`LabelSelector`]: a key, an operator and the operator's values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking it as Kubernetes does: the key must be a qualified name;
    /// `in`/`notin` need at least one value; `=`, `==` and `!=` exactly one; `exists` and `!`
    /// none; `gt`/`lt` exactly one integer; every value must be a valid label value. Values are
    /// kept sorted and without duplicates.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        let mut errs = Vec::new();
        let key_path = FieldPath::new("key");
        let values_path = FieldPath::new("values");
        let key_problems = is_qualified_name(&key);
        if !key_problems.is_empty() {
            errs.push(FieldError::invalid(
                &key_path,
                key.as_str(),
                key_problems.join("; "),
            ));
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        values.clone(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            values_path.index(i),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let problems = is_valid_label_value(v);
            if !problems.is_empty() {
                errs.push(FieldError::invalid(
                    values_path.index(i).key(&key),
                    v.as_str(),
                    problems.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(SelectorError::InvalidRequirement(errs));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and without duplicates (empty for `exists` and `!`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a set of labels satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(|v| self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(actual) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [wanted] = self.values.as_slice() else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > wanted
                } else {
                    actual < wanted
                }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values
            .binary_search_by(|v| v.as_str().cmp(value))
            .is_ok()
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: requirements that must all hold, kept sorted by key.
///
/// The empty selector matches every set of labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Parses the string syntax of `?labelSelector=`: comma-separated requirements
    /// `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`,
    /// `!key`, `key>5`, `key<5`, with spaces allowed around every token. Keys must be qualified
    /// names and values valid label values. An empty string matches everything.
    ///
    /// As in Kubernetes, a missing value means the empty value: `env=` is `env` equal to `""`
    /// and `env in ()` is `env in ("")`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Converts an API `LabelSelector`: each `matchLabels` entry becomes `key=value`, each
    /// `matchExpressions` entry its operator (`In`, `NotIn`, `Exists`, `DoesNotExist`). A
    /// selector with neither matches everything. (A *missing* API selector matches nothing in
    /// Kubernetes; callers holding an `Option` must treat `None` themselves.)
    pub fn from_api(selector: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(
                key.as_str(),
                Operator::Equals,
                vec![value.clone()],
            )?);
        }
        for expr in selector.match_expressions.iter().flatten() {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::UnknownOperator(other.to_owned())),
            };
            requirements.push(Requirement::new(
                expr.key.as_str(),
                operator,
                expr.values.clone().unwrap_or_default(),
            )?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// A selector requiring every label of `set` with its value (the form of a Service's or
    /// ReplicationController's `selector` map). The keys and values are not validated; an empty
    /// set gives the selector that matches everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        LabelSelector { requirements }
    }

    /// This selector with one more requirement.
    pub fn with_requirement(mut self, requirement: Requirement) -> Self {
        let at = self
            .requirements
            .partition_point(|r| r.key <= requirement.key);
        self.requirements.insert(at, requirement);
        self
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The only value `key` can have for an object to match, if the selector pins it with `=`,
    /// `==` or a one-value `in`; useful to look objects up by an indexed label.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| match r.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In
                if r.key == key && r.values.len() == 1 =>
            {
                Some(r.values[0].as_str())
            }
            _ => None,
        })
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

// ---- lexer ----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Any run of characters that are neither blanks nor one of `=!(),<>`. The keywords `in`
    /// and `notin` are identifiers too; the parser gives them their meaning where an operator
    /// is expected.
    Ident(String),
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    Greater,
    Less,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    /// The token as it appears in error messages.
    fn text(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::Bang => "!",
            Token::Greater => ">",
            Token::Less => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
            Token::End => "end of string",
        }
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_symbol(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if is_blank(c) {
            chars.next();
            continue;
        }
        if is_symbol(c) {
            chars.next();
            let next_is_eq = chars.peek() == Some(&'=');
            let token = match c {
                '=' if next_is_eq => {
                    chars.next();
                    Token::DoubleEquals
                }
                '!' if next_is_eq => {
                    chars.next();
                    Token::NotEquals
                }
                '=' => Token::Equals,
                '!' => Token::Bang,
                '(' => Token::Open,
                ')' => Token::Close,
                ',' => Token::Comma,
                '>' => Token::Greater,
                _ => Token::Less,
            };
            tokens.push(token);
            continue;
        }
        let mut ident = String::new();
        while let Some(&c) = chars.peek() {
            if is_blank(c) || is_symbol(c) {
                break;
            }
            ident.push(c);
            chars.next();
        }
        tokens.push(Token::Ident(ident));
    }
    tokens.push(Token::End);
    tokens
}

// ---- parser ---------------------------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            match self.peek() {
                Token::End => return Ok(requirements),
                Token::Ident(_) | Token::Bang => {}
                other => {
                    return Err(SelectorError::Unexpected {
                        found: other.text().to_owned(),
                        expected: "!, identifier, or 'end of string'",
                    });
                }
            }
            let requirement = self
                .parse_requirement()
                .map_err(SelectorError::Requirement)?;
            requirements.push(requirement);
            match self.next() {
                Token::End => return Ok(requirements),
                Token::Comma => match self.peek() {
                    Token::Ident(_) | Token::Bang => {}
                    other => {
                        return Err(SelectorError::Unexpected {
                            found: other.text().to_owned(),
                            expected: "identifier after ','",
                        });
                    }
                },
                other => {
                    return Err(SelectorError::Unexpected {
                        found: other.text().to_owned(),
                        expected: "',' or 'end of string'",
                    });
                }
            }
        }
    }

    /// One requirement; errors are the text that follows `unable to parse requirement: `.
    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let negated = if *self.peek() == Token::Bang {
            self.next();
            true
        } else {
            false
        };
        let key = match self.next() {
            Token::Ident(key) => key,
            other => return Err(format!("found '{}', expected: identifier", other.text())),
        };
        let problems = is_qualified_name(&key);
        if !problems.is_empty() {
            return Err(FieldError::invalid("key", key, problems.join("; ")).to_string());
        }
        let unary = if negated {
            Some(Operator::DoesNotExist)
        } else if matches!(self.peek(), Token::End | Token::Comma) {
            Some(Operator::Exists)
        } else {
            None
        };
        if let Some(operator) = unary {
            return Requirement::new(key, operator, Vec::new()).map_err(|e| e.to_string());
        }
        let operator = match self.next() {
            Token::Ident(word) if word == "in" => Operator::In,
            Token::Ident(word) if word == "notin" => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::Greater => Operator::GreaterThan,
            Token::Less => Operator::LessThan,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.text()
                ));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_set()?,
            _ => self.parse_single_value()?,
        };
        Requirement::new(key, operator, values).map_err(|e| e.to_string())
    }

    /// `( v1, v2, ... )`; empty entries stand for the empty value.
    fn parse_set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Token::Open => {}
            other => return Err(format!("found '{}', expected: '('", other.text())),
        }
        let mut values = BTreeSet::new();
        // `expect_value` is true right after `(` or `,`: a value or a `)` may come.
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Ident(v) if expect_value => {
                    values.insert(v);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        // `(,` or `,,`: an empty value.
                        values.insert(String::new());
                    }
                    expect_value = true;
                }
                Token::Close => {
                    if expect_value {
                        // `()` or `,)`: an empty value.
                        values.insert(String::new());
                    }
                    return Ok(values.into_iter().collect());
                }
                other if expect_value => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        other.text()
                    ));
                }
                other => {
                    return Err(format!("found '{}', expected: ',' or ')'", other.text()));
                }
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing before `,` or the end is `""`.
    fn parse_single_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.next() {
            Token::Ident(v) => Ok(vec![v]),
            other => Err(format!("found '{}', expected: identifier", other.text())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

/// The operator of a [`FieldRequirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a [`FieldSelector`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field, e.g. `metadata.name`.
    pub field: String,
    /// Equality or inequality.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

impl FieldRequirement {
    /// Whether `actual` (the object's value for the field, `""` when missing) satisfies the term.
    pub fn matches(&self, actual: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A parsed field selector: terms that must all hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// A selector with the single term `field=value`.
    pub fn equal(field: impl Into<String>, value: impl Into<String>) -> Self {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    /// Parses `a=b,c==d,e!=f`. Terms are split at unescaped commas; each term is split at the
    /// first `!=`, `==` or `=`. In values, `\,`, `\=` and `\\` stand for `,`, `=` and `\`; any
    /// other backslash, or an unescaped `,` or `=`, is an error. Field names are taken as they
    /// are (no trimming, no escapes). Empty terms are skipped, so `""` matches everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, operator, raw_value)) = split_term(term) else {
                return Err(SelectorError::InvalidFieldTerm {
                    selector: s.to_owned(),
                    term: term.to_owned(),
                });
            };
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value: unescape_field_value(raw_value)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The terms, in canonical order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The distinct field names the selector uses, sorted.
    pub fn fields(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.requirements.iter().map(|r| r.field.as_str()).collect();
        set.into_iter().collect()
    }

    /// Fails with `field label not supported: <field>` for the first field not in `supported`.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !supported.contains(&r.field.as_str()))
        {
            Some(r) => Err(SelectorError::UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Whether an object matches; `get` returns the object's value for a field name, and a
    /// missing field compares as `""`.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(&get(&r.field).unwrap_or_default()))
    }

    /// The only value `field` can have for an object to match, if an `=` term pins it; useful
    /// to look objects up by an indexed field such as `spec.nodeName`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Escapes a field-selector value: `\` → `\\`, `,` → `\,`, `=` → `\=`.
pub fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undoes [`escape_field_value`], refusing unknown escapes and unescaped `,` or `=`.
pub fn unescape_field_value(raw: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => {
                    return Err(SelectorError::InvalidEscapeSequence(format!("\\{other}")));
                }
                None => return Err(SelectorError::InvalidEscapeSequence("\\".to_owned())),
            },
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits at commas not preceded by a backslash escape; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator (`!=` and `==` win over `=` at the same place).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(v) => panic!("{s:?} parsed as {v}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "   ", "\t\n"] {
            let selector = sel(s);
            assert!(selector.is_empty());
            assert!(selector.matches(&labels(&[])));
            assert!(selector.matches(&labels(&[("a", "b")])));
            assert_eq!(selector.to_string(), "");
        }
        assert!(LabelSelector::everything().matches(&labels(&[("x", "y")])));
    }

    #[test]
    fn equality_operators() {
        let web = labels(&[("app", "web"), ("env", "prod")]);
        let db = labels(&[("app", "db")]);
        for s in ["app=web", "app==web", " app = web ", "app == web"] {
            assert!(sel(s).matches(&web), "{s}");
            assert!(!sel(s).matches(&db), "{s}");
            assert!(!sel(s).matches(&labels(&[])), "{s}");
        }
        let ne = sel("env!=prod");
        assert!(!ne.matches(&web));
        assert!(ne.matches(&db), "a missing label satisfies !=");
        assert!(ne.matches(&labels(&[("env", "dev")])));
        assert_eq!(
            sel("app==web").requirements()[0].operator(),
            Operator::DoubleEquals
        );
        assert_eq!(sel("app==web").to_string(), "app==web");
    }

    #[test]
    fn set_operators() {
        let s = sel("tier in (frontend, backend)");
        assert_eq!(s.requirements()[0].values(), ["backend", "frontend"]);
        assert!(s.matches(&labels(&[("tier", "frontend")])));
        assert!(s.matches(&labels(&[("tier", "backend")])));
        assert!(!s.matches(&labels(&[("tier", "cache")])));
        assert!(!s.matches(&labels(&[])));
        assert_eq!(s.to_string(), "tier in (backend,frontend)");

        let n = sel("tier notin(frontend,backend)");
        assert!(!n.matches(&labels(&[("tier", "frontend")])));
        assert!(n.matches(&labels(&[("tier", "cache")])));
        assert!(n.matches(&labels(&[])));
        assert_eq!(n.to_string(), "tier notin (backend,frontend)");

        assert_eq!(sel("a in (x)").to_string(), "a in (x)");
        assert_eq!(sel("a in (x,x,y)").requirements()[0].values(), ["x", "y"]);
        // keywords are ordinary words where a key or value is expected
        let k = sel("in in (in, notin)");
        assert_eq!(k.requirements()[0].key(), "in");
        assert!(k.matches(&labels(&[("in", "notin")])));
    }

    #[test]
    fn empty_values_follow_kubernetes() {
        assert_eq!(sel("a in ()").requirements()[0].values(), [""]);
        assert_eq!(sel("a in (,b)").requirements()[0].values(), ["", "b"]);
        assert_eq!(sel("a in (b,)").requirements()[0].values(), ["", "b"]);
        assert_eq!(
            sel("a in (b,,c)").requirements()[0].values(),
            ["", "b", "c"]
        );
        let e = sel("a=");
        assert_eq!(e.requirements()[0].values(), [""]);
        assert!(e.matches(&labels(&[("a", "")])));
        assert!(!e.matches(&labels(&[])));
        assert_eq!(sel("a=,b").requirements().len(), 2);
    }

    #[test]
    fn existence_operators() {
        let s = sel("canary");
        assert_eq!(s.requirements()[0].operator(), Operator::Exists);
        assert!(s.matches(&labels(&[("canary", "")])));
        assert!(!s.matches(&labels(&[("other", "")])));
        let n = sel("!canary");
        assert_eq!(n.requirements()[0].operator(), Operator::DoesNotExist);
        assert!(!n.matches(&labels(&[("canary", "true")])));
        assert!(n.matches(&labels(&[])));
        assert_eq!(sel(" ! canary ").to_string(), "!canary");
        assert_eq!(sel("a,b").to_string(), "a,b");
    }

    #[test]
    fn numeric_operators() {
        let gt = sel("replicas>5");
        assert!(gt.matches(&labels(&[("replicas", "6")])));
        assert!(!gt.matches(&labels(&[("replicas", "5")])));
        assert!(!gt.matches(&labels(&[("replicas", "many")])));
        assert!(!gt.matches(&labels(&[])));
        let lt = sel("replicas < 5");
        assert!(lt.matches(&labels(&[("replicas", "4")])));
        assert!(!lt.matches(&labels(&[("replicas", "5")])));
        assert_eq!(lt.to_string(), "replicas<5");
        assert_eq!(gt.requirements()[0].operator(), Operator::GreaterThan);
        assert!(err("replicas>five").contains("the value must be an integer"));
    }

    #[test]
    fn combined_selector_sorted_by_key() {
        let s = sel("tier in (frontend, backend), !canary, env!=prod");
        assert_eq!(
            s.to_string(),
            "!canary,env!=prod,tier in (backend,frontend)"
        );
        assert!(s.matches(&labels(&[("tier", "frontend"), ("env", "dev")])));
        assert!(!s.matches(&labels(&[("tier", "frontend"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("tier", "frontend"), ("env", "prod")])));
        // The canonical form parses back to the same selector.
        assert_eq!(sel(&s.to_string()), s);
        let parsed: LabelSelector = "b=1,a=2".parse().expect("parses");
        assert_eq!(parsed.to_string(), "a=2,b=1");
    }

    #[test]
    fn whitespace_is_tolerated_everywhere() {
        let m = labels(&[("a", "b"), ("c", "y"), ("e", "x"), ("g", "2")]);
        for (loose, canonical) in [
            (
                " a = b , c in ( x , y ) , ! d , e != f , g > 1 ",
                "a=b,c in (x,y),!d,e!=f,g>1",
            ),
            (
                "a=b,\tc\nin\r(x,\ty),!d,e!=f,g>1",
                "a=b,c in (x,y),!d,e!=f,g>1",
            ),
            (
                "  a==b ,c   in(x,y),!d,e   !=f,g>   1",
                "a==b,c in (x,y),!d,e!=f,g>1",
            ),
        ] {
            let parsed = sel(loose);
            assert_eq!(parsed.to_string(), canonical, "{loose:?}");
            assert!(parsed.matches(&m), "{loose:?}");
        }
    }

    #[test]
    fn prefixed_keys() {
        let s = sel("app.kubernetes.io/name=web,example.com/x in (a)");
        assert!(s.matches(&labels(&[
            ("app.kubernetes.io/name", "web"),
            ("example.com/x", "a")
        ])));
    }

    #[test]
    fn malformed_inputs() {
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found 'end of string', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in b"),
            "unable to parse requirement: found 'b', expected: '('"
        );
        assert_eq!(
            err("a in (b c)"),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (b,"),
            "unable to parse requirement: found 'end of string', expected: ',', ')' or identifier"
        );
        assert_eq!(
            err("a in"),
            "unable to parse requirement: found 'end of string', expected: '('"
        );
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("a (b)"),
            "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(
            err("a=b,"),
            "found 'end of string', expected: identifier after ','"
        );
        assert_eq!(err("a=b,,c=d"), "found ',', expected: identifier after ','");
        assert_eq!(
            err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("=a"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found 'end of string', expected: identifier"
        );
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            err("a!b"),
            "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn invalid_keys_and_values() {
        let e = err("a/b/c=d");
        assert!(
            e.starts_with("unable to parse requirement: key: Invalid value: \"a/b/c\": a qualified name must consist of"),
            "{e}"
        );
        let e = err("-bad");
        assert!(e.starts_with("unable to parse requirement: key: Invalid value: \"-bad\": name part must consist of"), "{e}");
        let e = err("a=-b");
        assert!(
            e.starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string"),
            "{e}"
        );
        let long = "v".repeat(64);
        let e = err(&format!("a in (x,{long})"));
        assert!(e.contains("must be no more than 63 characters"), "{e}");
    }

    #[test]
    fn requirement_new_rules() {
        let e = Requirement::new("a", Operator::In, vec![]).expect_err("empty set");
        assert_eq!(
            e.to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
        assert!(Requirement::new("a", Operator::Equals, vec![]).is_err());
        assert!(Requirement::new("a", Operator::Equals, vec!["x".into(), "y".into()]).is_err());
        assert!(Requirement::new("a", Operator::Exists, vec!["x".into()]).is_err());
        assert!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()]).is_err()
        );
        let r = Requirement::new(
            "a",
            Operator::NotIn,
            vec!["y".into(), "x".into(), "y".into()],
        )
        .expect("valid");
        assert_eq!(r.values(), ["x", "y"]);
        assert_eq!(r.to_string(), "a notin (x,y)");
        let s = LabelSelector::everything()
            .with_requirement(Requirement::new("b", Operator::Exists, vec![]).expect("valid"))
            .with_requirement(r);
        assert_eq!(s.to_string(), "a notin (x,y),b");
    }

    #[test]
    fn from_api() {
        let api = metav1::LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                metav1::LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["frontend".into(), "backend".into()]),
                },
                metav1::LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["prod".into()]),
                },
                metav1::LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                metav1::LabelSelectorRequirement {
                    key: "team".into(),
                    operator: "Exists".into(),
                    values: Some(vec![]),
                },
            ]),
        };
        let s = LabelSelector::from_api(&api).expect("valid");
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env notin (prod),team,tier in (backend,frontend)"
        );
        // Round trip: the string form parses to the same selector.
        assert_eq!(sel(&s.to_string()), s);
        assert!(s.matches(&labels(&[
            ("app", "web"),
            ("tier", "backend"),
            ("team", "a")
        ])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "backend")])));

        let empty = LabelSelector::from_api(&metav1::LabelSelector::default()).expect("valid");
        assert!(empty.is_empty());
        assert!(empty.matches(&labels(&[("any", "thing")])));
        let also_empty = metav1::LabelSelector {
            match_labels: Some(BTreeMap::new()),
            match_expressions: Some(vec![]),
        };
        assert!(
            LabelSelector::from_api(&also_empty)
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn from_api_errors() {
        let expr = |op: &str, values: Option<Vec<String>>| metav1::LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![metav1::LabelSelectorRequirement {
                key: "k".into(),
                operator: op.into(),
                values,
            }]),
        };
        assert_eq!(
            LabelSelector::from_api(&expr("Equals", None)).expect_err("bad op"),
            SelectorError::UnknownOperator("Equals".into())
        );
        assert_eq!(
            LabelSelector::from_api(&expr("Foo", None))
                .expect_err("bad op")
                .to_string(),
            "\"Foo\" is not a valid label selector operator"
        );
        assert!(matches!(
            LabelSelector::from_api(&expr("In", None)),
            Err(SelectorError::InvalidRequirement(_))
        ));
        assert!(LabelSelector::from_api(&expr("NotIn", Some(vec![]))).is_err());
        assert!(LabelSelector::from_api(&expr("Exists", Some(vec!["x".into()]))).is_err());
        assert!(LabelSelector::from_api(&expr("DoesNotExist", Some(vec!["x".into()]))).is_err());
        let bad_label = metav1::LabelSelector {
            match_labels: Some(labels(&[("a", "b c")])),
            match_expressions: None,
        };
        let e = LabelSelector::from_api(&bad_label).expect_err("bad value");
        assert!(
            e.to_string()
                .starts_with("values[0][a]: Invalid value: \"b c\""),
            "{e}"
        );
    }

    #[test]
    fn from_set_and_exact_match() {
        let s = LabelSelector::from_set(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
        assert!(LabelSelector::from_set(&BTreeMap::new()).is_empty());
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(sel("x in (y)").requires_exact_match("x"), Some("y"));
        assert_eq!(sel("x in (y,z)").requires_exact_match("x"), None);
        assert_eq!(sel("x!=y").requires_exact_match("x"), None);
    }

    // ---- field selectors ----

    fn pod(field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some("web-1".to_owned()),
            "metadata.namespace" => Some("default".to_owned()),
            "spec.nodeName" => Some("node-a".to_owned()),
            "status.phase" => Some("Running".to_owned()),
            _ => None,
        }
    }

    fn fsel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn field_selector_operators() {
        assert!(fsel("metadata.name=web-1").matches(pod));
        assert!(fsel("metadata.name==web-1").matches(pod));
        assert!(!fsel("metadata.name=web-2").matches(pod));
        assert!(fsel("status.phase!=Pending").matches(pod));
        assert!(!fsel("status.phase!=Running").matches(pod));
        assert!(fsel("spec.nodeName=node-a,status.phase=Running").matches(pod));
        assert!(!fsel("spec.nodeName=node-a,status.phase=Failed").matches(pod));
        // A missing field compares as "".
        assert!(fsel("spec.missing=").matches(pod));
        assert!(fsel("spec.missing!=x").matches(pod));
        assert!(!fsel("spec.missing=x").matches(pod));
        // Unscheduled pods: spec.nodeName=""
        assert!(fsel("spec.nodeName=").matches(|_| None));
        let ne = fsel("a!=b");
        let req = &ne.requirements()[0];
        assert_eq!(
            (req.field.as_str(), req.operator, req.value.as_str()),
            ("a", FieldOperator::NotEquals, "b")
        );
    }

    #[test]
    fn field_selector_empty_and_canonical() {
        for s in ["", ",", ",,"] {
            let f = fsel(s);
            assert!(f.is_empty());
            assert!(f.matches(|_| None));
        }
        let f = fsel("status.phase!=Failed,metadata.name==web-1,,spec.nodeName=n");
        assert_eq!(
            f.to_string(),
            "metadata.name=web-1,spec.nodeName=n,status.phase!=Failed"
        );
        assert_eq!(fsel(&f.to_string()), f);
        assert_eq!(
            f.fields(),
            ["metadata.name", "spec.nodeName", "status.phase"]
        );
        assert_eq!(f.requires_exact_match("spec.nodeName"), Some("n"));
        assert_eq!(f.requires_exact_match("status.phase"), None);
        assert_eq!(
            FieldSelector::equal("metadata.name", "x").to_string(),
            "metadata.name=x"
        );
        let parsed: FieldSelector = "a=b".parse().expect("parses");
        assert_eq!(parsed, FieldSelector::equal("a", "b"));
    }

    #[test]
    fn field_selector_escaping() {
        let f = fsel(r"metadata.name=a\,b\=c\\d,spec.x=y");
        assert_eq!(f.requirements().len(), 2);
        assert_eq!(f.requirements()[0].value, r"a,b=c\d");
        assert!(f.matches(|field| match field {
            "metadata.name" => Some(r"a,b=c\d".to_owned()),
            "spec.x" => Some("y".to_owned()),
            _ => None,
        }));
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d,spec.x=y");
        assert_eq!(escape_field_value(r"a,b=c\"), r"a\,b\=c\\");
        assert_eq!(
            unescape_field_value(&escape_field_value(r"x\,=y")).expect("ok"),
            r"x\,=y"
        );
        // Values may contain other characters as they are.
        assert_eq!(fsel("a=b c:d/é").requirements()[0].value, "b c:d/é");
    }

    #[test]
    fn field_selector_errors() {
        assert_eq!(
            FieldSelector::parse("a=b,foo")
                .expect_err("no operator")
                .to_string(),
            "invalid selector: 'a=b,foo'; can't understand 'foo'"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\x")
                .expect_err("bad escape")
                .to_string(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\").expect_err("trailing backslash"),
            SelectorError::InvalidEscapeSequence(r"\".to_owned())
        );
        assert_eq!(
            FieldSelector::parse("a=b=c")
                .expect_err("unescaped =")
                .to_string(),
            "invalid field selector: unescaped character in value: ="
        );
        let f = fsel("metadata.name=x,foo=bar");
        assert_eq!(
            f.check_supported(&["metadata.name", "metadata.namespace"])
                .expect_err("unsupported")
                .to_string(),
            "field label not supported: foo"
        );
        assert!(f.check_supported(&["metadata.name", "foo"]).is_ok());
    }
}
