//! Amazon EventBridge event-pattern matching.
//!
//! Follows "Content filtering in Amazon EventBridge event patterns": a pattern
//! mirrors the event's shape, every named field must match (AND), and each
//! leaf is a list of matchers of which any may match (OR).

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Number, Value};

const OR_KEY: &str = "$or";
const EQUALS_IGNORE_CASE: &str = "equals-ignore-case";

/// A compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct EventPattern {
    root: ObjectPattern,
}

/// Why a pattern was rejected; every variant names where in the pattern it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern must be a JSON object")]
    NotAnObject,
    #[error("empty pattern object at {path}")]
    EmptyObject { path: String },
    #[error("{path} must be an object or an array of matchers")]
    NotAMatcherList { path: String },
    #[error("empty matcher list at {path}")]
    EmptyMatcherList { path: String },
    #[error("unknown operator `{op}` at {path}")]
    UnknownOperator { op: String, path: String },
    #[error("invalid matcher at {path}: {reason}")]
    InvalidMatcher { path: String, reason: String },
    #[error("$or at {path} needs an array of at least two pattern objects")]
    InvalidOr { path: String },
}

impl EventPattern {
    /// Compiles `pattern`, validating its structure and every operator up front.
    ///
    /// # Errors
    ///
    /// Returns a [`PatternError`] naming the offending path when the pattern is not
    /// an object, has an empty object or matcher list, a non-array leaf, an unknown
    /// operator, or a malformed operand (numeric pairs, CIDR, wildcard, `$or`, ...).
    pub fn parse(pattern: &Value) -> Result<EventPattern, PatternError> {
        let map = pattern.as_object().ok_or(PatternError::NotAnObject)?;
        Ok(EventPattern { root: ObjectPattern::parse(map, "")? })
    }

    /// The event's top-level fields the pattern reads: no other field can
    /// change whether an event matches.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields = Vec::new();
        self.root.top_level(&mut fields);
        fields
    }

    /// Whether `event` satisfies every field of the pattern.
    #[must_use]
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches_value(Some(event))
    }
}

/// One level of the pattern: named fields plus an optional `$or` of alternatives.
#[derive(Debug, Clone)]
struct ObjectPattern {
    fields: Vec<(String, FieldPattern)>,
    any_of: Vec<ObjectPattern>,
}

#[derive(Debug, Clone)]
enum FieldPattern {
    Leaf(Vec<Matcher>),
    Nested(ObjectPattern),
}

impl ObjectPattern {
    fn parse(map: &Map<String, Value>, path: &str) -> Result<Self, PatternError> {
        if map.is_empty() {
            let path = if path.is_empty() { "top level" } else { path };
            return Err(PatternError::EmptyObject { path: path.to_owned() });
        }
        let mut pattern = ObjectPattern { fields: Vec::new(), any_of: Vec::new() };
        for (key, value) in map {
            let field_path = join(path, key);
            if key == OR_KEY {
                pattern.any_of = parse_or(value, &field_path)?;
                continue;
            }
            let field = match value {
                Value::Array(items) => FieldPattern::Leaf(parse_matchers(items, &field_path)?),
                Value::Object(inner) => FieldPattern::Nested(Self::parse(inner, &field_path)?),
                _ => return Err(PatternError::NotAMatcherList { path: field_path }),
            };
            pattern.fields.push((key.clone(), field));
        }
        Ok(pattern)
    }

    fn top_level<'a>(&'a self, fields: &mut Vec<&'a str>) {
        fields.extend(self.fields.iter().map(|(key, _)| key.as_str()));
        self.any_of.iter().for_each(|alternative| alternative.top_level(fields));
    }

    fn matches_value(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::Object(map)) => self.matches_map(Some(map)),
            // Each array element must satisfy the whole sub-pattern on its own, so
            // fields from different elements never combine (array-consistent matching).
            Some(Value::Array(items)) if !items.is_empty() => items.iter().any(|item| self.matches_value(Some(item))),
            // Nothing below this node has leaves, yet `exists: false` can still match.
            _ => self.matches_map(None),
        }
    }

    fn matches_map(&self, map: Option<&Map<String, Value>>) -> bool {
        let fields_match = self.fields.iter().all(|(key, field)| {
            let child = map.and_then(|map| map.get(key));
            match field {
                FieldPattern::Leaf(matchers) => leaf_matches(matchers, child),
                FieldPattern::Nested(pattern) => pattern.matches_value(child),
            }
        });
        fields_match && (self.any_of.is_empty() || self.any_of.iter().any(|alt| alt.matches_map(map)))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn invalid(path: &str, reason: impl Into<String>) -> PatternError {
    PatternError::InvalidMatcher { path: path.to_owned(), reason: reason.into() }
}

fn parse_or(value: &Value, path: &str) -> Result<Vec<ObjectPattern>, PatternError> {
    let error = || PatternError::InvalidOr { path: path.to_owned() };
    let items = value.as_array().filter(|items| items.len() >= 2).ok_or_else(error)?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let map = item.as_object().ok_or_else(error)?;
            ObjectPattern::parse(map, &format!("{path}[{index}]"))
        })
        .collect()
}

fn leaf_matches(matchers: &[Matcher], value: Option<&Value>) -> bool {
    let mut leaves = Vec::new();
    collect_leaves(value, &mut leaves);
    matchers.iter().any(|matcher| matcher.matches(&leaves))
}

/// Flattens arrays into their scalar elements. Objects are not leaves: EventBridge
/// applies matchers (including `exists`) to leaf values only.
fn collect_leaves<'a>(value: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    match value {
        Some(Value::Array(items)) => items.iter().for_each(|item| collect_leaves(Some(item), out)),
        Some(Value::Object(_)) | None => {}
        Some(scalar) => out.push(scalar),
    }
}

#[derive(Debug, Clone)]
enum Matcher {
    Equals(Value),
    Text(TextMatch),
    Numeric(NumericRange),
    Cidr(Cidr),
    AnythingBut(Exclusion),
    Exists(bool),
}

impl Matcher {
    fn matches(&self, leaves: &[&Value]) -> bool {
        match self {
            // The only matcher that a missing field can satisfy.
            Matcher::Exists(false) => leaves.is_empty(),
            _ => leaves.iter().any(|leaf| self.matches_leaf(leaf)),
        }
    }

    fn matches_leaf(&self, leaf: &Value) -> bool {
        match self {
            Matcher::Equals(literal) => literal_eq(literal, leaf),
            Matcher::Text(text) => leaf.as_str().is_some_and(|s| text.matches(s)),
            Matcher::Numeric(range) => leaf.as_f64().is_some_and(|n| range.contains(n)),
            Matcher::Cidr(cidr) => leaf.as_str().is_some_and(|s| cidr.contains(s)),
            Matcher::AnythingBut(exclusion) => !exclusion.excludes(leaf),
            Matcher::Exists(present) => *present,
        }
    }
}

/// Numbers compare by value (5 equals 5.0); everything else structurally.
fn literal_eq(literal: &Value, leaf: &Value) -> bool {
    match (literal, leaf) {
        (Value::Number(a), Value::Number(b)) => numbers_eq(a, b),
        _ => literal == leaf,
    }
}

/// Integers compare exactly so large IDs (e.g. account numbers) don't collide via f64.
fn numbers_eq(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

fn parse_matchers(items: &[Value], path: &str) -> Result<Vec<Matcher>, PatternError> {
    if items.is_empty() {
        return Err(PatternError::EmptyMatcherList { path: path.to_owned() });
    }
    items.iter().map(|item| parse_matcher(item, path)).collect()
}

fn parse_matcher(item: &Value, path: &str) -> Result<Matcher, PatternError> {
    match item {
        Value::Object(operator) => parse_operator(operator, path),
        Value::Array(_) => Err(invalid(path, "nested arrays are not allowed in a matcher list")),
        scalar => Ok(Matcher::Equals(scalar.clone())),
    }
}

fn single_entry<'a>(object: &'a Map<String, Value>, path: &str) -> Result<(&'a str, &'a Value), PatternError> {
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((op, operand)), None) => Ok((op.as_str(), operand)),
        _ => Err(invalid(path, "a matcher object needs exactly one operator")),
    }
}

fn expect_str<'a>(operand: &'a Value, op: &str, path: &str) -> Result<&'a str, PatternError> {
    operand.as_str().ok_or_else(|| invalid(path, format!("{op} needs a string")))
}

fn parse_operator(object: &Map<String, Value>, path: &str) -> Result<Matcher, PatternError> {
    let (op, operand) = single_entry(object, path)?;
    let matcher = match op {
        "prefix" => Matcher::Text(TextMatch::Prefix(parse_affix(operand, op, path)?)),
        "suffix" => Matcher::Text(TextMatch::Suffix(parse_affix(operand, op, path)?)),
        EQUALS_IGNORE_CASE => Matcher::Text(TextMatch::equals_ignore_case(expect_str(operand, op, path)?)),
        "wildcard" => Matcher::Text(TextMatch::Wildcard(Wildcard::parse(expect_str(operand, op, path)?, path)?)),
        "anything-but" => Matcher::AnythingBut(Exclusion::parse(operand, path)?),
        "numeric" => Matcher::Numeric(NumericRange::parse(operand, path)?),
        "cidr" => Matcher::Cidr(Cidr::parse(expect_str(operand, op, path)?, path)?),
        "exists" => Matcher::Exists(operand.as_bool().ok_or_else(|| invalid(path, "exists needs true or false"))?),
        _ => {
            return Err(PatternError::UnknownOperator { op: op.to_owned(), path: path.to_owned() });
        }
    };
    Ok(matcher)
}

/// `prefix`/`suffix` take a string or `{"equals-ignore-case": string}`.
fn parse_affix(operand: &Value, op: &str, path: &str) -> Result<CaseText, PatternError> {
    match operand {
        Value::String(text) => Ok(CaseText::exact(text)),
        Value::Object(object) => {
            let (inner_op, inner) = single_entry(object, path)?;
            if inner_op != EQUALS_IGNORE_CASE {
                return Err(PatternError::UnknownOperator { op: inner_op.to_owned(), path: path.to_owned() });
            }
            Ok(CaseText::ignore_case(expect_str(inner, inner_op, path)?))
        }
        _ => Err(invalid(path, format!("{op} needs a string or an {EQUALS_IGNORE_CASE} object"))),
    }
}

/// Text to compare against, lowercased up front when the comparison ignores case.
#[derive(Debug, Clone)]
struct CaseText {
    text: String,
    ignore_case: bool,
}

impl CaseText {
    fn exact(text: &str) -> Self {
        CaseText { text: text.to_owned(), ignore_case: false }
    }

    fn ignore_case(text: &str) -> Self {
        CaseText { text: text.to_lowercase(), ignore_case: true }
    }

    /// The event value normalised the same way as `self.text`.
    fn normalise<'a>(&self, value: &'a str) -> Cow<'a, str> {
        if self.ignore_case { Cow::Owned(value.to_lowercase()) } else { Cow::Borrowed(value) }
    }
}

#[derive(Debug, Clone)]
enum TextMatch {
    Prefix(CaseText),
    Suffix(CaseText),
    Equals(CaseText),
    Wildcard(Wildcard),
}

impl TextMatch {
    fn equals_ignore_case(text: &str) -> Self {
        TextMatch::Equals(CaseText::ignore_case(text))
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            TextMatch::Prefix(p) => p.normalise(value).starts_with(p.text.as_str()),
            TextMatch::Suffix(s) => s.normalise(value).ends_with(s.text.as_str()),
            TextMatch::Equals(e) => e.normalise(value) == e.text,
            TextMatch::Wildcard(w) => w.matches(value),
        }
    }
}

/// What `anything-but` rules out.
#[derive(Debug, Clone)]
enum Exclusion {
    /// Strings or numbers (never mixed), compared like literal matchers.
    Values(Vec<Value>),
    /// `prefix`, `suffix`, `equals-ignore-case` or `wildcard` forms.
    Text(Vec<TextMatch>),
}

impl Exclusion {
    fn parse(operand: &Value, path: &str) -> Result<Self, PatternError> {
        match operand {
            Value::String(_) | Value::Number(_) => Ok(Exclusion::Values(vec![operand.clone()])),
            Value::Array(items) => Self::parse_values(items, path),
            Value::Object(object) => Self::parse_text(object, path),
            _ => Err(invalid(
                path,
                "anything-but needs a string, a number, a list of either, or a prefix/suffix/equals-ignore-case/wildcard object",
            )),
        }
    }

    fn parse_values(items: &[Value], path: &str) -> Result<Self, PatternError> {
        let all_strings = items.iter().all(Value::is_string);
        let all_numbers = items.iter().all(Value::is_number);
        if items.is_empty() || !(all_strings || all_numbers) {
            return Err(invalid(path, "anything-but list must be non-empty and all strings or all numbers"));
        }
        Ok(Exclusion::Values(items.to_vec()))
    }

    fn parse_text(object: &Map<String, Value>, path: &str) -> Result<Self, PatternError> {
        let (op, operand) = single_entry(object, path)?;
        let texts = match op {
            // EventBridge allows a single, non-empty prefix or suffix here.
            "prefix" => vec![TextMatch::Prefix(CaseText::exact(non_empty_str(operand, op, path)?))],
            "suffix" => vec![TextMatch::Suffix(CaseText::exact(non_empty_str(operand, op, path)?))],
            EQUALS_IGNORE_CASE => string_list(operand, op, path)?.into_iter().map(TextMatch::equals_ignore_case).collect(),
            "wildcard" => string_list(operand, op, path)?
                .into_iter()
                .map(|text| Wildcard::parse(text, path).map(TextMatch::Wildcard))
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(PatternError::UnknownOperator { op: op.to_owned(), path: path.to_owned() });
            }
        };
        Ok(Exclusion::Text(texts))
    }

    fn excludes(&self, leaf: &Value) -> bool {
        match self {
            Exclusion::Values(values) => values.iter().any(|value| literal_eq(value, leaf)),
            // A non-string can't start with, end with or equal the text, so it is let through.
            Exclusion::Text(texts) => leaf.as_str().is_some_and(|s| texts.iter().any(|t| t.matches(s))),
        }
    }
}

fn non_empty_str<'a>(operand: &'a Value, op: &str, path: &str) -> Result<&'a str, PatternError> {
    let text = expect_str(operand, op, path)?;
    if text.is_empty() {
        return Err(invalid(path, format!("anything-but {op} must not be empty")));
    }
    Ok(text)
}

fn string_list<'a>(operand: &'a Value, op: &str, path: &str) -> Result<Vec<&'a str>, PatternError> {
    let error = || invalid(path, format!("{op} needs a string or a non-empty list of strings"));
    match operand {
        Value::String(text) => Ok(vec![text.as_str()]),
        Value::Array(items) if !items.is_empty() => items.iter().map(|item| item.as_str().ok_or_else(error)).collect(),
        _ => Err(error()),
    }
}

/// A glob where `*` matches any run of characters, stored as the literal runs between stars.
#[derive(Debug, Clone)]
struct Wildcard {
    segments: Vec<String>,
}

impl Wildcard {
    fn parse(pattern: &str, path: &str) -> Result<Self, PatternError> {
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut previous_star = false;
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            match c {
                // EventBridge rejects `**`: it adds nothing but matching cost.
                '*' if previous_star => {
                    return Err(invalid(path, "wildcard must not contain consecutive `*`"));
                }
                '*' => {
                    segments.push(std::mem::take(&mut current));
                    previous_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => current.push(escaped),
                    _ => return Err(invalid(path, "wildcard `\\` may only escape `*` or `\\`")),
                },
                other => current.push(other),
            }
            previous_star = false;
        }
        segments.push(current);
        Ok(Wildcard { segments })
    }

    fn matches(&self, value: &str) -> bool {
        let Some((first, rest)) = self.segments.split_first() else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return value == first;
        };
        // Anchor both ends first so the last segment can't overlap the first.
        let Some(inner) = value.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some(mut remaining) = inner.strip_suffix(last.as_str()) else {
            return false;
        };
        // With only `*`, taking the leftmost occurrence of each middle segment is optimal.
        for segment in middle {
            match remaining.split_once(segment.as_str()) {
                Some((_, after)) => remaining = after,
                None => return false,
            }
        }
        true
    }
}

#[derive(Debug, Clone, Copy)]
struct Bound {
    value: f64,
    inclusive: bool,
}

/// `numeric` ranges; `=` is a range whose bounds are both the same inclusive value.
#[derive(Debug, Clone)]
struct NumericRange {
    lower: Option<Bound>,
    upper: Option<Bound>,
}

impl NumericRange {
    fn parse(operand: &Value, path: &str) -> Result<Self, PatternError> {
        let items = operand
            .as_array()
            .filter(|items| !items.is_empty() && items.len() % 2 == 0)
            .ok_or_else(|| invalid(path, "numeric needs operator/number pairs"))?;
        let pairs = items.chunks_exact(2).map(|pair| Self::parse_pair(pair, path)).collect::<Result<Vec<_>, _>>()?;
        match pairs.as_slice() {
            [(op, value)] => Self::single(op, *value, path),
            [(low_op, low), (high_op, high)] => Self::between(low_op, *low, high_op, *high, path),
            _ => Err(invalid(path, "numeric takes at most two comparisons")),
        }
    }

    fn parse_pair<'a>(pair: &'a [Value], path: &str) -> Result<(&'a str, f64), PatternError> {
        match pair {
            [Value::String(op), Value::Number(n)] => {
                n.as_f64().map(|value| (op.as_str(), value)).ok_or_else(|| invalid(path, "numeric value out of range"))
            }
            _ => Err(invalid(path, "numeric needs operator/number pairs")),
        }
    }

    fn single(op: &str, value: f64, path: &str) -> Result<Self, PatternError> {
        let (lower, upper) = match op {
            "=" => (Some(Bound { value, inclusive: true }), Some(Bound { value, inclusive: true })),
            ">" | ">=" => (Some(Bound { value, inclusive: op == ">=" }), None),
            "<" | "<=" => (None, Some(Bound { value, inclusive: op == "<=" })),
            _ => return Err(unknown_numeric_op(op, path)),
        };
        Ok(NumericRange { lower, upper })
    }

    /// Mirrors EventBridge: a two-sided range is a lower bound followed by an upper bound.
    fn between(low_op: &str, low: f64, high_op: &str, high: f64, path: &str) -> Result<Self, PatternError> {
        if let Some(op) = [low_op, high_op].into_iter().find(|op| !is_numeric_op(op)) {
            return Err(unknown_numeric_op(op, path));
        }
        if !matches!(low_op, ">" | ">=") || !matches!(high_op, "<" | "<=") {
            return Err(invalid(path, "a numeric range needs `>`/`>=` followed by `<`/`<=`"));
        }
        if low >= high {
            return Err(invalid(path, "numeric range lower bound must be below its upper bound"));
        }
        Ok(NumericRange {
            lower: Some(Bound { value: low, inclusive: low_op == ">=" }),
            upper: Some(Bound { value: high, inclusive: high_op == "<=" }),
        })
    }

    fn contains(&self, n: f64) -> bool {
        let above_lower = self.lower.is_none_or(|b| if b.inclusive { n >= b.value } else { n > b.value });
        let below_upper = self.upper.is_none_or(|b| if b.inclusive { n <= b.value } else { n < b.value });
        above_lower && below_upper
    }
}

fn is_numeric_op(op: &str) -> bool {
    matches!(op, "=" | ">" | ">=" | "<" | "<=")
}

fn unknown_numeric_op(op: &str, path: &str) -> PatternError {
    invalid(path, format!("unknown numeric operator `{op}`"))
}

/// An IPv4 or IPv6 network; addresses of the other family never match.
#[derive(Debug, Clone)]
enum Cidr {
    V4 { network: u32, mask: u32 },
    V6 { network: u128, mask: u128 },
}

impl Cidr {
    fn parse(text: &str, path: &str) -> Result<Self, PatternError> {
        let error = || invalid(path, format!("invalid CIDR block `{text}`"));
        let (address, length) = text.split_once('/').ok_or_else(error)?;
        let length: u32 = length.parse().map_err(|_| error())?;
        match address.parse::<IpAddr>().map_err(|_| error())? {
            IpAddr::V4(ip) if length <= 32 => {
                // checked_shl: a /0 shifts by the full width, which plain `<<` rejects.
                let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
                Ok(Cidr::V4 { network: u32::from(ip) & mask, mask })
            }
            IpAddr::V6(ip) if length <= 128 => {
                let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
                Ok(Cidr::V6 { network: u128::from(ip) & mask, mask })
            }
            _ => Err(error()),
        }
    }

    fn contains(&self, text: &str) -> bool {
        match (self, text.parse::<IpAddr>()) {
            (Cidr::V4 { network, mask }, Ok(IpAddr::V4(ip))) => u32::from(ip) & mask == *network,
            (Cidr::V6 { network, mask }, Ok(IpAddr::V6(ip))) => u128::from(ip) & mask == *network,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pattern(value: Value) -> EventPattern {
        EventPattern::parse(&value).expect("pattern should parse")
    }

    fn matches(pattern_value: Value, event: Value) -> bool {
        pattern(pattern_value).matches(&event)
    }

    #[test]
    fn a_pattern_names_the_top_level_fields_it_reads_including_those_of_its_alternatives() {
        let or = pattern(json!({
            "source": ["a"],
            "detail": { "status": ["paid"] },
            "$or": [{ "detail-type": ["X"] }, { "resources": [{ "exists": true }] }]
        }));
        let mut fields = or.fields();
        fields.sort();
        assert_eq!(fields, ["detail", "detail-type", "resources", "source"]);
        assert_eq!(pattern(json!({ "source": ["a"] })).fields(), ["source"]);
    }

    fn parse_error(value: Value) -> PatternError {
        EventPattern::parse(&value).expect_err("pattern should be rejected")
    }

    fn error_message(value: Value) -> String {
        parse_error(value).to_string()
    }

    // --- literals -------------------------------------------------------

    #[test]
    fn string_literal_matches_exactly_and_case_sensitively() {
        let p = json!({"source": ["food-delivery.ordering"]});
        assert!(matches(p.clone(), json!({"source": "food-delivery.ordering"})));
        assert!(!matches(p.clone(), json!({"source": "Food-Delivery.Ordering"})));
        assert!(!matches(p, json!({"source": "food-delivery"})));
    }

    #[test]
    fn number_literal_compares_numerically_but_not_with_strings() {
        let p = json!({"qty": [5]});
        assert!(matches(p.clone(), json!({"qty": 5})));
        assert!(matches(p.clone(), json!({"qty": 5.0})));
        assert!(matches(json!({"qty": [5.0]}), json!({"qty": 5})));
        assert!(matches(json!({"price": [301.8]}), json!({"price": 3.018e2})));
        assert!(!matches(p.clone(), json!({"qty": 6})));
        assert!(!matches(p, json!({"qty": "5"})));
    }

    #[test]
    fn large_integer_literals_compare_exactly() {
        let p = json!({"account": [9_007_199_254_740_993_u64]});
        assert!(matches(p.clone(), json!({"account": 9_007_199_254_740_993_u64})));
        assert!(!matches(p, json!({"account": 9_007_199_254_740_992_u64})));
    }

    #[test]
    fn boolean_literal_matches_only_booleans() {
        let p = json!({"paid": [true]});
        assert!(matches(p.clone(), json!({"paid": true})));
        assert!(!matches(p.clone(), json!({"paid": false})));
        assert!(!matches(p, json!({"paid": "true"})));
    }

    #[test]
    fn null_literal_matches_null_but_not_missing_or_empty_string() {
        let p = json!({"detail": {"courier": [null]}});
        assert!(matches(p.clone(), json!({"detail": {"courier": null}})));
        assert!(!matches(p.clone(), json!({"detail": {}})));
        assert!(!matches(p.clone(), json!({"detail": {"courier": ""}})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn empty_string_literal_matches_empty_string_only() {
        let p = json!({"note": [""]});
        assert!(matches(p.clone(), json!({"note": ""})));
        assert!(!matches(p.clone(), json!({"note": null})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn any_matcher_in_a_list_is_enough() {
        let p = json!({"status": ["cancelled", {"prefix": "rej"}, 3]});
        assert!(matches(p.clone(), json!({"status": "cancelled"})));
        assert!(matches(p.clone(), json!({"status": "rejected"})));
        assert!(matches(p.clone(), json!({"status": 3})));
        assert!(!matches(p, json!({"status": "delivered"})));
    }

    #[test]
    fn every_field_must_match() {
        let p = json!({"source": ["orders"], "detail-type": ["OrderPlaced"]});
        assert!(matches(p.clone(), json!({"source": "orders", "detail-type": "OrderPlaced"})));
        assert!(!matches(p.clone(), json!({"source": "orders", "detail-type": "OrderCancelled"})));
        assert!(!matches(p, json!({"source": "orders"})));
    }

    #[test]
    fn fields_not_in_the_pattern_are_ignored() {
        let p = json!({"source": ["orders"]});
        assert!(matches(p, json!({"source": "orders", "extra": {"deep": [1, 2]}})));
    }

    // --- nesting and arrays ---------------------------------------------

    #[test]
    fn nested_objects_descend_into_event_fields() {
        let p = json!({"detail": {"data": {"storeId": ["s1"]}}});
        assert!(matches(p.clone(), json!({"detail": {"data": {"storeId": "s1"}}})));
        assert!(!matches(p.clone(), json!({"detail": {"data": {"storeId": "s2"}}})));
        assert!(!matches(p.clone(), json!({"detail": {"storeId": "s1"}})));
        assert!(!matches(p.clone(), json!({"detail": "s1"})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn array_event_value_matches_when_any_element_matches() {
        let p = json!({"resources": ["arn:store:s1", "arn:store:s9"]});
        assert!(matches(p.clone(), json!({"resources": ["arn:store:s0", "arn:store:s1"]})));
        assert!(!matches(p.clone(), json!({"resources": ["arn:store:s2"]})));
        assert!(!matches(p, json!({"resources": []})));
    }

    #[test]
    fn nested_arrays_in_events_are_flattened() {
        let p = json!({"tags": ["vegan"]});
        assert!(matches(p, json!({"tags": [["spicy"], ["vegan", "halal"]]})));
    }

    #[test]
    fn operators_apply_to_each_array_element() {
        let p = json!({"amounts": [{"numeric": [">", 100]}]});
        assert!(matches(p.clone(), json!({"amounts": [5, 150]})));
        assert!(!matches(p, json!({"amounts": [5, 50]})));
    }

    #[test]
    fn pattern_objects_descend_into_arrays_of_objects() {
        let p = json!({"items": {"sku": ["pizza"]}});
        let event = json!({"items": [{"sku": "salad"}, {"sku": "pizza"}]});
        assert!(matches(p, event));
    }

    #[test]
    fn fields_must_match_within_the_same_array_element() {
        let p = json!({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}});
        let event = json!({"employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"}
        ]});
        assert!(!matches(p, event.clone()));
        let same_element = json!({"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}});
        assert!(matches(same_element, event));
    }

    #[test]
    fn leaf_matchers_do_not_match_objects() {
        let p = json!({"detail": ["x"]});
        assert!(!matches(p, json!({"detail": {"x": 1}})));
    }

    // --- prefix / suffix / equals-ignore-case / wildcard ------------------

    #[test]
    fn prefix_matches_string_starts_only() {
        let p = json!({"time": [{"prefix": "2026-01"}]});
        assert!(matches(p.clone(), json!({"time": "2026-01-01T00:00:00Z"})));
        assert!(!matches(p.clone(), json!({"time": "2025-01-01T00:00:00Z"})));
        assert!(!matches(p.clone(), json!({"time": "x2026-01"})));
        assert!(!matches(json!({"code": [{"prefix": "12"}]}), json!({"code": 123})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn prefix_equals_ignore_case() {
        let p = json!({"service": [{"prefix": {"equals-ignore-case": "EventB"}}]});
        assert!(matches(p.clone(), json!({"service": "eventbridge"})));
        assert!(matches(p.clone(), json!({"service": "EVENTBRIDGE"})));
        assert!(!matches(p, json!({"service": "sqs"})));
    }

    #[test]
    fn suffix_matches_string_ends_only() {
        let p = json!({"file": [{"suffix": ".png"}]});
        assert!(matches(p.clone(), json!({"file": "menu.png"})));
        assert!(!matches(p.clone(), json!({"file": "menu.PNG"})));
        assert!(!matches(p, json!({"file": "menu.png.bak"})));
    }

    #[test]
    fn suffix_equals_ignore_case() {
        let p = json!({"file": [{"suffix": {"equals-ignore-case": ".PNG"}}]});
        assert!(matches(p.clone(), json!({"file": "menu.png"})));
        assert!(matches(p.clone(), json!({"file": "menu.Png"})));
        assert!(!matches(p, json!({"file": "menu.jpg"})));
    }

    #[test]
    fn equals_ignore_case_matches_whole_string() {
        let p = json!({"name": [{"equals-ignore-case": "alice"}]});
        assert!(matches(p.clone(), json!({"name": "ALICE"})));
        assert!(matches(p.clone(), json!({"name": "Alice"})));
        assert!(!matches(p.clone(), json!({"name": "Alice B"})));
        assert!(!matches(p, json!({"name": null})));
    }

    #[test]
    fn wildcard_star_matches_any_run() {
        let p = json!({"path": [{"wildcard": "dir/*.png"}]});
        assert!(matches(p.clone(), json!({"path": "dir/menu.png"})));
        assert!(matches(p.clone(), json!({"path": "dir/.png"})));
        assert!(matches(p.clone(), json!({"path": "dir/a/b.png"})));
        assert!(!matches(p.clone(), json!({"path": "other/menu.png"})));
        assert!(!matches(p, json!({"path": "dir/menu.jpg"})));
    }

    #[test]
    fn wildcard_with_several_stars_and_anchors() {
        let p = json!({"arn": [{"wildcard": "arn:*:store/*/menu"}]});
        assert!(matches(p.clone(), json!({"arn": "arn:aws:store/s1/menu"})));
        assert!(!matches(p.clone(), json!({"arn": "arn:aws:store/s1/menus"})));
        assert!(matches(json!({"x": [{"wildcard": "*mid*"}]}), json!({"x": "a mid b"})));
        assert!(!matches(json!({"x": [{"wildcard": "*mid*"}]}), json!({"x": "a m-id b"})));
        // The trailing literal must not reuse characters of the leading one.
        assert!(!matches(json!({"x": [{"wildcard": "ab*ba"}]}), json!({"x": "aba"})));
        assert!(matches(json!({"x": [{"wildcard": "ab*ba"}]}), json!({"x": "abba"})));
    }

    #[test]
    fn wildcard_without_star_is_exact_and_escapes_are_literal() {
        assert!(matches(json!({"x": [{"wildcard": "abc"}]}), json!({"x": "abc"})));
        assert!(!matches(json!({"x": [{"wildcard": "abc"}]}), json!({"x": "abcd"})));
        let star = json!({"x": [{"wildcard": "a\\*b"}]});
        assert!(matches(star.clone(), json!({"x": "a*b"})));
        assert!(!matches(star, json!({"x": "axb"})));
        let backslash = json!({"x": [{"wildcard": "a\\\\*"}]});
        assert!(matches(backslash, json!({"x": "a\\anything"})));
        assert!(!matches(json!({"x": [{"wildcard": "*"}]}), json!({"x": 1})));
    }

    // --- anything-but ----------------------------------------------------

    #[test]
    fn anything_but_string() {
        let p = json!({"state": [{"anything-but": "initializing"}]});
        assert!(matches(p.clone(), json!({"state": "running"})));
        assert!(!matches(p.clone(), json!({"state": "initializing"})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn anything_but_number_compares_numerically() {
        let p = json!({"limit": [{"anything-but": 123}]});
        assert!(matches(p.clone(), json!({"limit": 124})));
        assert!(!matches(p.clone(), json!({"limit": 123.0})));
        assert!(matches(p, json!({"limit": "123"})));
    }

    #[test]
    fn anything_but_string_list() {
        let p = json!({"state": [{"anything-but": ["stopped", "overloaded"]}]});
        assert!(matches(p.clone(), json!({"state": "running"})));
        assert!(!matches(p.clone(), json!({"state": "stopped"})));
        assert!(!matches(p.clone(), json!({"state": "overloaded"})));
        assert!(!matches(p, json!({"other": "running"})));
    }

    #[test]
    fn anything_but_number_list() {
        let p = json!({"x": [{"anything-but": [100, 200, 300]}]});
        assert!(matches(p.clone(), json!({"x": 150})));
        assert!(!matches(p.clone(), json!({"x": 200})));
        assert!(!matches(p, json!({"x": 300.0})));
    }

    #[test]
    fn anything_but_prefix() {
        let p = json!({"region": [{"anything-but": {"prefix": "us-"}}]});
        assert!(matches(p.clone(), json!({"region": "eu-west-1"})));
        assert!(!matches(p.clone(), json!({"region": "us-east-1"})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn anything_but_suffix() {
        let p = json!({"file": [{"anything-but": {"suffix": ".png"}}]});
        assert!(matches(p.clone(), json!({"file": "a.jpg"})));
        assert!(!matches(p, json!({"file": "a.png"})));
    }

    #[test]
    fn anything_but_equals_ignore_case_string_and_list() {
        let single = json!({"state": [{"anything-but": {"equals-ignore-case": "Initializing"}}]});
        assert!(matches(single.clone(), json!({"state": "running"})));
        assert!(!matches(single, json!({"state": "INITIALIZING"})));
        let list = json!({"state": [{"anything-but": {"equals-ignore-case": ["a", "B"]}}]});
        assert!(!matches(list.clone(), json!({"state": "b"})));
        assert!(matches(list, json!({"state": "c"})));
    }

    #[test]
    fn anything_but_wildcard() {
        let p = json!({"path": [{"anything-but": {"wildcard": "*/lib/*"}}]});
        assert!(matches(p.clone(), json!({"path": "/usr/bin/x"})));
        assert!(!matches(p, json!({"path": "/usr/lib/x"})));
    }

    #[test]
    fn anything_but_on_array_needs_one_non_excluded_element() {
        let p = json!({"tags": [{"anything-but": "spicy"}]});
        assert!(matches(p.clone(), json!({"tags": ["spicy", "vegan"]})));
        assert!(!matches(p.clone(), json!({"tags": ["spicy"]})));
        assert!(!matches(p, json!({"tags": []})));
    }

    // --- numeric ---------------------------------------------------------

    #[test]
    fn numeric_range_bounds() {
        let p = json!({"count": [{"numeric": [">", 0, "<=", 5]}]});
        assert!(matches(p.clone(), json!({"count": 5})));
        assert!(matches(p.clone(), json!({"count": 0.5})));
        assert!(!matches(p.clone(), json!({"count": 0})));
        assert!(!matches(p.clone(), json!({"count": 5.000001})));
        assert!(!matches(p, json!({"count": -1})));
        let half_open = json!({"count": [{"numeric": [">=", 0, "<", 5]}]});
        assert!(matches(half_open.clone(), json!({"count": 0})));
        assert!(!matches(half_open, json!({"count": 5})));
    }

    #[test]
    fn numeric_single_comparisons() {
        assert!(matches(json!({"x": [{"numeric": ["<", 10]}]}), json!({"x": 9.99})));
        assert!(!matches(json!({"x": [{"numeric": ["<", 10]}]}), json!({"x": 10})));
        assert!(matches(json!({"x": [{"numeric": ["<=", 10]}]}), json!({"x": 10})));
        assert!(matches(json!({"x": [{"numeric": [">", -3]}]}), json!({"x": -2})));
        assert!(matches(json!({"x": [{"numeric": [">=", 7]}]}), json!({"x": 7})));
        assert!(matches(json!({"x": [{"numeric": ["=", 3.018e2]}]}), json!({"x": 301.8})));
        assert!(!matches(json!({"x": [{"numeric": ["=", 301.8]}]}), json!({"x": 301.9})));
    }

    #[test]
    fn numeric_ignores_non_numbers_and_missing_fields() {
        let p = json!({"x": [{"numeric": [">", 0]}]});
        assert!(!matches(p.clone(), json!({"x": "5"})));
        assert!(!matches(p.clone(), json!({"x": true})));
        assert!(!matches(p.clone(), json!({"x": null})));
        assert!(!matches(p, json!({})));
    }

    // --- exists ----------------------------------------------------------

    #[test]
    fn exists_true_needs_a_present_leaf() {
        let p = json!({"detail": {"state": [{"exists": true}]}});
        assert!(matches(p.clone(), json!({"detail": {"state": "pending"}})));
        assert!(matches(p.clone(), json!({"detail": {"state": null}})));
        assert!(matches(p.clone(), json!({"detail": {"state": ["a"]}})));
        assert!(!matches(p.clone(), json!({"detail": {"state": []}})));
        assert!(!matches(p.clone(), json!({"detail": {"state": {"inner": 1}}})));
        assert!(!matches(p.clone(), json!({"detail": {"c-count": {"c1": 100}}})));
        assert!(!matches(p, json!({})));
    }

    #[test]
    fn exists_false_matches_missing_but_not_present_null() {
        let p = json!({"detail": {"courier": [{"exists": false}]}});
        assert!(matches(p.clone(), json!({"detail": {"store": "s1"}})));
        assert!(matches(p.clone(), json!({"detail": {}})));
        assert!(matches(p.clone(), json!({})));
        assert!(!matches(p.clone(), json!({"detail": {"courier": null}})));
        assert!(!matches(p, json!({"detail": {"courier": "c1"}})));
    }

    #[test]
    fn exists_false_only_considers_leaves() {
        let p = json!({"detail": {"c-count": [{"exists": false}]}});
        assert!(matches(p.clone(), json!({"detail": {"c-count": {"c1": 100}}})));
        assert!(matches(p, json!({"detail": {"c-count": []}})));
    }

    // --- cidr ------------------------------------------------------------

    #[test]
    fn cidr_ipv4() {
        let p = json!({"ip": [{"cidr": "10.0.0.0/24"}]});
        assert!(matches(p.clone(), json!({"ip": "10.0.0.255"})));
        assert!(matches(p.clone(), json!({"ip": "10.0.0.0"})));
        assert!(!matches(p.clone(), json!({"ip": "10.0.1.0"})));
        assert!(!matches(p.clone(), json!({"ip": "not-an-ip"})));
        assert!(!matches(p.clone(), json!({"ip": "::1"})));
        assert!(!matches(p, json!({"ip": 10})));
        assert!(matches(json!({"ip": [{"cidr": "0.0.0.0/0"}]}), json!({"ip": "8.8.8.8"})));
        assert!(matches(json!({"ip": [{"cidr": "1.2.3.4/32"}]}), json!({"ip": "1.2.3.4"})));
    }

    #[test]
    fn cidr_ipv6() {
        let p = json!({"ip": [{"cidr": "2001:db8::/32"}]});
        assert!(matches(p.clone(), json!({"ip": "2001:db8:1::42"})));
        assert!(!matches(p.clone(), json!({"ip": "2001:db9::1"})));
        assert!(!matches(p, json!({"ip": "10.0.0.1"})));
    }

    // --- $or -------------------------------------------------------------

    #[test]
    fn or_matches_any_alternative() {
        let p = json!({"$or": [{"metric": ["cpu"]}, {"namespace": ["orders"]}]});
        assert!(matches(p.clone(), json!({"metric": "cpu"})));
        assert!(matches(p.clone(), json!({"namespace": "orders"})));
        assert!(!matches(p, json!({"metric": "disk", "namespace": "billing"})));
    }

    #[test]
    fn or_combines_with_sibling_fields_by_and() {
        let p = json!({
            "source": ["orders"],
            "$or": [{"detail": {"total": [{"numeric": [">", 100]}]}}, {"detail": {"vip": [true]}}]
        });
        assert!(matches(p.clone(), json!({"source": "orders", "detail": {"total": 150}})));
        assert!(matches(p.clone(), json!({"source": "orders", "detail": {"total": 5, "vip": true}})));
        assert!(!matches(p.clone(), json!({"source": "orders", "detail": {"total": 5}})));
        assert!(!matches(p, json!({"source": "billing", "detail": {"total": 150}})));
    }

    #[test]
    fn or_nested_inside_objects_and_alternatives() {
        let p = json!({
            "detail": {
                "$or": [
                    {"status": ["cancelled"]},
                    {"kind": ["refund"], "$or": [{"amount": [{"numeric": [">", 10]}]}, {"manual": [true]}]}
                ]
            }
        });
        assert!(matches(p.clone(), json!({"detail": {"status": "cancelled"}})));
        assert!(matches(p.clone(), json!({"detail": {"kind": "refund", "amount": 20}})));
        assert!(matches(p.clone(), json!({"detail": {"kind": "refund", "manual": true}})));
        assert!(!matches(p.clone(), json!({"detail": {"kind": "refund", "amount": 5}})));
        assert!(!matches(p, json!({"detail": {"status": "placed"}})));
    }

    // --- realistic envelope ----------------------------------------------

    #[test]
    fn eventbridge_envelope() {
        let event = json!({
            "version": "0",
            "id": "1",
            "detail-type": "OrderCancelled",
            "source": "food-delivery.ordering",
            "account": "123",
            "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {"eventType": "OrderCancelled", "data": {"reason": "customer", "storeId": "s1"}}
        });
        let routed = json!({
            "source": ["food-delivery.ordering"],
            "detail-type": ["OrderCancelled", "OrderRejected"]
        });
        assert!(matches(routed, event.clone()));
        let not_customer = json!({"detail": {"data": {"reason": [{"anything-but": "customer"}]}}});
        assert!(!matches(not_customer, event.clone()));
        let store = json!({
            "source": [{"prefix": "food-delivery."}],
            "time": [{"prefix": "2026-"}],
            "resources": [{"exists": false}],
            "detail": {"data": {"storeId": [{"anything-but": ["s2", "s3"]}]}}
        });
        assert!(matches(store, event));
    }

    // --- invalid patterns ------------------------------------------------

    #[test]
    fn pattern_must_be_an_object() {
        assert_eq!(parse_error(json!([1])), PatternError::NotAnObject);
        assert_eq!(parse_error(json!("source")), PatternError::NotAnObject);
        assert_eq!(error_message(json!(null)), "pattern must be a JSON object");
    }

    #[test]
    fn empty_objects_are_rejected() {
        assert_eq!(error_message(json!({})), "empty pattern object at top level");
        assert_eq!(error_message(json!({"detail": {}})), "empty pattern object at detail");
    }

    #[test]
    fn leaves_must_be_arrays() {
        assert_eq!(error_message(json!({"detail": {"status": "placed"}})), "detail.status must be an object or an array of matchers");
        assert!(matches!(parse_error(json!({"x": 1})), PatternError::NotAMatcherList { .. }));
    }

    #[test]
    fn empty_matcher_list_is_rejected() {
        assert_eq!(error_message(json!({"detail": {"status": []}})), "empty matcher list at detail.status");
    }

    #[test]
    fn unknown_operator_is_rejected_with_path() {
        assert_eq!(error_message(json!({"detail": {"status": [{"foo": "x"}]}})), "unknown operator `foo` at detail.status");
        assert_eq!(error_message(json!({"x": [{"anything-but": {"contains": "a"}}]})), "unknown operator `contains` at x");
        assert_eq!(error_message(json!({"x": [{"prefix": {"equals": "a"}}]})), "unknown operator `equals` at x");
    }

    #[test]
    fn malformed_numeric_is_rejected() {
        let cases = [
            json!({"n": [{"numeric": []}]}),
            json!({"n": [{"numeric": [">"]}]}),
            json!({"n": [{"numeric": [">", "5"]}]}),
            json!({"n": [{"numeric": [5, ">"]}]}),
            json!({"n": [{"numeric": ">5"}]}),
            json!({"n": [{"numeric": ["!=", 5]}]}),
            json!({"n": [{"numeric": ["<", 5, ">", 0]}]}),
            json!({"n": [{"numeric": ["=", 5, "<", 9]}]}),
            json!({"n": [{"numeric": [">", 5, "<", 5]}]}),
            json!({"n": [{"numeric": [">", 0, "<", 5, "<", 6]}]}),
            json!({"n": [{"numeric": [">", 0, "<>", 5]}]}),
        ];
        for case in cases {
            let error = parse_error(case.clone());
            assert!(matches!(&error, PatternError::InvalidMatcher { path, .. } if path == "n"), "{case} gave {error:?}");
        }
        assert_eq!(error_message(json!({"n": [{"numeric": [">"]}]})), "invalid matcher at n: numeric needs operator/number pairs");
    }

    #[test]
    fn malformed_operands_are_rejected() {
        let cases = [
            json!({"x": [{"prefix": 1}]}),
            json!({"x": [{"suffix": null}]}),
            json!({"x": [{"equals-ignore-case": ["a"]}]}),
            json!({"x": [{"exists": "yes"}]}),
            json!({"x": [{"cidr": "10.0.0.0"}]}),
            json!({"x": [{"cidr": "10.0.0.0/33"}]}),
            json!({"x": [{"cidr": "nope/8"}]}),
            json!({"x": [{"wildcard": "a**b"}]}),
            json!({"x": [{"wildcard": "a\\b"}]}),
            json!({"x": [{"wildcard": "trailing\\"}]}),
            json!({"x": [{"prefix": "a", "suffix": "b"}]}),
            json!({"x": [{}]}),
            json!({"x": [["nested"]]}),
            json!({"x": [{"anything-but": ["a", 1]}]}),
            json!({"x": [{"anything-but": []}]}),
            json!({"x": [{"anything-but": true}]}),
            json!({"x": [{"anything-but": [null]}]}),
            json!({"x": [{"anything-but": {"prefix": ""}}]}),
            json!({"x": [{"anything-but": {"prefix": ["a", "b"]}}]}),
            json!({"x": [{"anything-but": {"equals-ignore-case": [1]}}]}),
            json!({"x": [{"anything-but": {"wildcard": "a**"}}]}),
        ];
        for case in cases {
            let error = parse_error(case.clone());
            assert!(matches!(&error, PatternError::InvalidMatcher { path, .. } if path == "x"), "{case} gave {error:?}");
        }
    }

    #[test]
    fn malformed_or_is_rejected() {
        let expected = "$or at detail.$or needs an array of at least two pattern objects";
        assert_eq!(error_message(json!({"detail": {"$or": [{"a": [1]}]}})), expected);
        assert_eq!(error_message(json!({"detail": {"$or": [{"a": [1]}, "b"]}})), expected);
        assert_eq!(error_message(json!({"detail": {"$or": {"a": [1]}}})), expected);
        assert_eq!(error_message(json!({"$or": [{"a": [1]}, {"b": []}]})), "empty matcher list at $or[1].b");
    }

    #[test]
    fn errors_deep_in_the_pattern_report_the_full_path() {
        assert_eq!(
            error_message(json!({"detail": {"data": {"reason": [{"bogus": 1}]}}})),
            "unknown operator `bogus` at detail.data.reason"
        );
    }
}
