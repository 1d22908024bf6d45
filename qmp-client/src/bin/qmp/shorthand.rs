//! qmp-shell's `key=value` shorthand: words to a JSON arguments object,
//! and a line to words.

use qmp_client::JsonObject;
use serde_json::Value;

/// A word or line the shorthand does not accept.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum ShorthandError {
    /// A word without `=`.
    #[error("`{0}` is not KEY=VALUE (or KEY:=JSON)")]
    NotKeyValue(String),
    /// An empty key or path segment (`=1`, `a..b=1`).
    #[error("`{0}` has an empty key")]
    EmptyKey(String),
    /// `KEY:=JSON` whose value is not JSON.
    #[error("the value of `{word}` is not JSON: {reason}")]
    NotJson {
        /// The whole word.
        word: String,
        /// What serde_json said.
        reason: String,
    },
    /// The same key twice (`a=1 a=2`, or `a=1 a.b=2`).
    #[error("`{0}` is given twice")]
    Duplicate(String),
    /// A quote or bracket left open at the end of the line.
    #[error("unbalanced {0} in the line")]
    Unbalanced(&'static str),
}

/// The arguments object for `words`: `key=value` (typed as JSON where it
/// parses, else a string), `key:=JSON` (must be JSON), `a.b=v` (nested).
pub(crate) fn arguments<S: AsRef<str>>(words: &[S]) -> Result<JsonObject, ShorthandError> {
    let mut object = JsonObject::new();
    for word in words {
        let word = word.as_ref();
        let (key, value) = word_value(word)?;
        insert(&mut object, key, value, word)?;
    }
    Ok(object)
}

fn word_value(word: &str) -> Result<(&str, Value), ShorthandError> {
    let Some((key, raw)) = word.split_once('=') else {
        return Err(ShorthandError::NotKeyValue(word.to_owned()));
    };
    if let Some(key) = key.strip_suffix(':') {
        let value = serde_json::from_str(raw).map_err(|error| ShorthandError::NotJson {
            word: word.to_owned(),
            reason: error.to_string(),
        })?;
        return Ok((key, value));
    }
    // JSON where it parses (numbers, booleans, null, objects, arrays,
    // quoted strings), the text itself otherwise.
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    Ok((key, value))
}

fn insert(
    object: &mut JsonObject,
    key: &str,
    value: Value,
    word: &str,
) -> Result<(), ShorthandError> {
    let mut segments = key.split('.').peekable();
    let mut current = object;
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            return Err(ShorthandError::EmptyKey(word.to_owned()));
        }
        if segments.peek().is_none() {
            if current.contains_key(segment) {
                return Err(ShorthandError::Duplicate(key.to_owned()));
            }
            current.insert(segment.to_owned(), value);
            return Ok(());
        }
        let next = current
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(JsonObject::new()));
        current = match next {
            Value::Object(inner) => inner,
            _ => return Err(ShorthandError::Duplicate(key.to_owned())),
        };
    }
    Ok(())
}

/// Splits a line into words at whitespace, except inside `"…"` (kept as
/// written, for JSON strings), `'…'` (quotes removed, text literal) and
/// `{…}`/`[…]` (kept whole, for JSON values).
pub(crate) fn words(line: &str) -> Result<Vec<String>, ShorthandError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut depth = 0usize;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() && depth == 0 => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                continue;
            }
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => word.push(c),
                    None => return Err(ShorthandError::Unbalanced("single quote")),
                }
            },
            '"' => {
                word.push('"');
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => {
                            word.push('\\');
                            match chars.next() {
                                Some(c) => word.push(c),
                                None => return Err(ShorthandError::Unbalanced("double quote")),
                            }
                        }
                        Some(c) => word.push(c),
                        None => return Err(ShorthandError::Unbalanced("double quote")),
                    }
                }
                word.push('"');
            }
            '{' | '[' => {
                depth += 1;
                word.push(c);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                word.push(c);
            }
            c => word.push(c),
        }
        in_word = true;
    }
    if depth > 0 {
        return Err(ShorthandError::Unbalanced("bracket"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(words: &[&str]) -> Result<Value, ShorthandError> {
        arguments(words).map(Value::Object)
    }

    #[test]
    fn values_are_json_where_they_parse() {
        let got = parsed(&[
            "driver=virtio-blk-pci",
            "n=3",
            "f=-1.5",
            "on=true",
            "off=false",
            "nothing=null",
            "list=[1,2]",
            "obj={\"a\":1}",
            "quoted=\"123\"",
            "path=/tmp/x y",
            "empty=",
        ]);
        assert_eq!(
            got,
            Ok(json!({
                "driver": "virtio-blk-pci", "n": 3, "f": -1.5, "on": true, "off": false,
                "nothing": null, "list": [1, 2], "obj": {"a": 1}, "quoted": "123",
                "path": "/tmp/x y", "empty": "",
            }))
        );
    }

    #[test]
    fn dots_nest_and_colon_equals_is_explicit_json() {
        let got = parsed(&["a.b=1", "a.c.d=x", "e:=\"7\"", "f:={\"g\": [true]}"]);
        assert_eq!(
            got,
            Ok(json!({"a": {"b": 1, "c": {"d": "x"}}, "e": "7", "f": {"g": [true]}}))
        );
    }

    #[test]
    fn bad_words_are_refused_with_the_word() {
        let cases: [(&[&str], ShorthandError); 5] = [
            (&["novalue"], ShorthandError::NotKeyValue("novalue".into())),
            (&["=1"], ShorthandError::EmptyKey("=1".into())),
            (&["a..b=1"], ShorthandError::EmptyKey("a..b=1".into())),
            (&["a=1", "a=2"], ShorthandError::Duplicate("a".into())),
            (&["a=1", "a.b=2"], ShorthandError::Duplicate("a.b".into())),
        ];
        for (words, expected) in cases {
            let got = parsed(words);
            assert_eq!(got, Err(expected), "{words:?}");
        }
        let got = parsed(&["x:=nope"]);
        assert!(
            matches!(&got, Err(ShorthandError::NotJson { word, .. }) if word == "x:=nope"),
            "{got:?}"
        );
    }

    #[test]
    fn lines_split_at_spaces_outside_quotes_and_brackets() {
        let got = words(r#"  device_add  id="my \"disk\"" name='a b' x:={"k": [1, 2]}  "#);
        assert_eq!(
            got,
            Ok(vec![
                "device_add".to_owned(),
                r#"id="my \"disk\"""#.to_owned(),
                "name=a b".to_owned(),
                r#"x:={"k": [1, 2]}"#.to_owned(),
            ])
        );
        assert_eq!(
            words("a b=\"x"),
            Err(ShorthandError::Unbalanced("double quote"))
        );
        assert_eq!(
            words("a b='x"),
            Err(ShorthandError::Unbalanced("single quote"))
        );
        assert_eq!(
            words("a b={\"x\": 1"),
            Err(ShorthandError::Unbalanced("bracket"))
        );
        assert_eq!(words("   "), Ok(Vec::new()));
    }

    #[test]
    fn split_words_parse_back() {
        let line = r#"id="my disk" opts:={"a b": 1} n=2"#;
        let got = words(line)
            .and_then(|words| arguments(&words))
            .map(Value::Object);
        assert_eq!(
            got,
            Ok(json!({"id": "my disk", "opts": {"a b": 1}, "n": 2}))
        );
    }
}
