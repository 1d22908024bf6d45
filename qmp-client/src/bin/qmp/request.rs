//! One command to run: from a script or shell line, checked against the
//! schema, sent.

use qmp_client::{Client, JsonObject};
use serde_json::Value;

use crate::failure::Failure;
use crate::schema::Schema;
use crate::shorthand;

/// A command with its arguments, and the caller's `id` to echo back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    /// The command's name.
    pub(crate) name: String,
    /// Its arguments, if any.
    pub(crate) args: Option<JsonObject>,
    /// The `id` of a JSON request line, echoed in its reply.
    pub(crate) id: Option<Value>,
}

impl Call {
    /// `name` with the shorthand `words` (`key=value`, `key:=JSON`).
    pub(crate) fn from_words<S: AsRef<str>>(name: &str, words: &[S]) -> Result<Call, Failure> {
        let args = shorthand::arguments(words).map_err(|e| Failure::Usage(e.to_string()))?;
        Ok(Call {
            name: name.to_owned(),
            args: (!args.is_empty()).then_some(args),
            id: None,
        })
    }

    /// A script line: a JSON request object (`{"execute": .., "arguments":
    /// .., "id": ..}`) or shorthand (`name key=value ...`). `None` for a
    /// blank line or a `#` comment.
    pub(crate) fn parse_line(line: &str) -> Result<Option<Call>, Failure> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        if line.starts_with('{') {
            return from_json(line).map(Some);
        }
        let words = shorthand::words(line).map_err(|e| Failure::Usage(e.to_string()))?;
        match words.split_first() {
            Some((name, rest)) => Call::from_words(name, rest).map(Some),
            None => Ok(None),
        }
    }

    /// Checks the call against `schema` (when given) and runs it.
    pub(crate) async fn run(
        &self,
        client: &Client,
        schema: Option<&Schema>,
    ) -> Result<Value, Failure> {
        if let Some(schema) = schema {
            schema.check(&self.name, self.args.as_ref())?;
        }
        Ok(client.execute_raw(&self.name, self.args.clone()).await?)
    }
}

fn from_json(line: &str) -> Result<Call, Failure> {
    let bad = |why: String| Failure::Usage(format!("not a QMP request object ({why}): {line}"));
    let mut object: JsonObject = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let name = match object.remove("execute") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(bad("`execute` is not a string".to_owned())),
        None => return Err(bad("no `execute`".to_owned())),
    };
    let args = match object.remove("arguments") {
        Some(Value::Object(args)) => Some(args),
        None => None,
        Some(_) => return Err(bad("`arguments` is not an object".to_owned())),
    };
    let id = object.remove("id");
    if let Some(key) = object.keys().next() {
        return Err(bad(format!("unknown member `{key}`")));
    }
    Ok(Call { name, args, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, args: Value, id: Option<Value>) -> Call {
        Call {
            name: name.to_owned(),
            args: args.as_object().cloned(),
            id,
        }
    }

    #[test]
    fn lines_in_shorthand_and_json() {
        let got = Call::parse_line("  query-status ");
        assert_eq!(
            got.ok(),
            Some(Some(call("query-status", Value::Null, None)))
        );
        let got = Call::parse_line("qom-get path=/machine property=type");
        let expected = call(
            "qom-get",
            json!({"path": "/machine", "property": "type"}),
            None,
        );
        assert_eq!(got.ok(), Some(Some(expected)));
        let got = Call::parse_line(r#"{"execute": "stop", "arguments": {}, "id": 7}"#);
        assert_eq!(
            got.ok(),
            Some(Some(call("stop", json!({}), Some(json!(7)))))
        );
        assert_eq!(Call::parse_line("# a comment").ok(), Some(None));
        assert_eq!(Call::parse_line("").ok(), Some(None));
    }

    #[test]
    fn bad_lines_say_why() {
        for (line, why) in [
            (r#"{"arguments": {}}"#, "no `execute`"),
            (r#"{"execute": 1}"#, "not a string"),
            (r#"{"execute": "x", "arguments": []}"#, "not an object"),
            (r#"{"execute": "x", "exec-oob": "y"}"#, "unknown member"),
            ("{nope", "not a QMP request"),
            ("stop now", "is not KEY=VALUE"),
        ] {
            let got = Call::parse_line(line);
            assert!(
                matches!(&got, Err(Failure::Usage(message)) if message.contains(why)),
                "{line}: {got:?}"
            );
        }
    }
}
