//! What the generated code calls: the (de)serialisation of unions, whose
//! variant is chosen by a tag member, and of enumerations.

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::JsonObject;

/// A variant's members as an object.
pub(crate) fn to_object<T: Serialize>(value: &T) -> Result<JsonObject, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(map) => Ok(map),
        _ => Ok(JsonObject::new()),
    }
}

/// Writes a union: the base's members, then the variant's.
pub(crate) fn serialize_union<B: Serialize, S: Serializer>(
    base: &B,
    variant: Result<JsonObject, serde_json::Error>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut object = to_object(base).map_err(S::Error::custom)?;
    object.extend(variant.map_err(S::Error::custom)?);
    object.serialize(serializer)
}

/// Reads a union's base and tag; the whole object is kept for the
/// variant.
pub(crate) fn deserialize_union<'de, B: DeserializeOwned, D: Deserializer<'de>>(
    deserializer: D,
    tag: &str,
) -> Result<(B, String, Value), D::Error> {
    let value = Value::Object(JsonObject::deserialize(deserializer)?);
    let base = B::deserialize(&value).map_err(D::Error::custom)?;
    let tag = match value.get(tag) {
        Some(Value::String(tag)) => tag.clone(),
        _ => return Err(D::Error::custom(format!("the union has no string `{tag}`"))),
    };
    Ok((base, tag, value))
}

/// Reads a union's variant from the union's object (base members are
/// ignored, as every unknown member is).
pub(crate) fn from_object<T: DeserializeOwned, E: serde::de::Error>(
    object: &Value,
) -> Result<T, E> {
    T::deserialize(object).map_err(E::custom)
}

/// The union's object, for a variant this crate does not know.
pub(crate) fn into_object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

/// Reads a string (borrowed or not) into an enumeration.
pub(crate) struct EnumVisitor<T>(pub(crate) fn(&str) -> T);

impl<T> serde::de::Visitor<'_> for EnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
        Ok((self.0)(value))
    }
}

/// An object's members, put in one by one by a generated `Serialize` or
/// taken out by a generated `Deserialize`: a few lines per struct where
/// serde's derives write a visitor of hundreds, which made the crate slow
/// to compile. On reading, members this crate does not know stay behind,
/// ignored.
#[derive(Default)]
pub(crate) struct Members {
    object: JsonObject,
    /// The first member that did not serialise.
    error: Option<serde_json::Error>,
}

impl Members {
    /// Adds the member `name`.
    pub(crate) fn put<T: Serialize>(&mut self, name: &str, value: &T) {
        if self.error.is_some() {
            return;
        }
        match serde_json::to_value(value) {
            Ok(value) => {
                self.object.insert(name.to_owned(), value);
            }
            Err(error) => self.error = Some(in_member(name, &error)),
        }
    }

    /// Adds the member `name` unless it is `None`.
    pub(crate) fn put_optional<T: Serialize>(&mut self, name: &str, value: &Option<T>) {
        if let Some(value) = value {
            self.put(name, value);
        }
    }

    /// Writes the object, or the first member's error.
    pub(crate) fn serialize<S: Serializer>(self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.error {
            Some(error) => Err(S::Error::custom(error)),
            None => self.object.serialize(serializer),
        }
    }

    /// Reads the object whose members are taken.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Self, D::Error> {
        let object = JsonObject::deserialize(deserializer)?;
        Ok(Self {
            object,
            error: None,
        })
    }

    /// The member `name`, which must be there.
    pub(crate) fn required<T: DeserializeOwned, E: serde::de::Error>(
        &mut self,
        name: &'static str,
    ) -> Result<T, E> {
        match self.object.remove(name) {
            Some(value) => T::deserialize(value).map_err(|error| in_member(name, &error)),
            None => Err(E::missing_field(name)),
        }
    }

    /// The member `name`, `None` when absent or `null`.
    pub(crate) fn optional<T: DeserializeOwned, E: serde::de::Error>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<T>, E> {
        match self.object.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|error| in_member(name, &error)),
        }
    }
}

/// Names the member whose value did not decode, so a nested error reads
/// as a path: "member `inserted`: member `ro`: invalid type…".
fn in_member<E: serde::de::Error>(name: &str, error: &serde_json::Error) -> E {
    E::custom(format_args!("member `{name}`: {error}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::qapi::{commands, types};

    #[test]
    fn members_are_written_under_their_wire_names_and_none_is_left_out() {
        let mut activate = commands::BlockdevSetActive::new(true);
        assert_eq!(
            serde_json::to_value(&activate).ok(),
            Some(json!({"active": true}))
        );
        activate.node_name = Some("disk0".into());
        assert_eq!(
            serde_json::to_value(&activate).ok(),
            Some(json!({"active": true, "node-name": "disk0"}))
        );
    }

    #[test]
    fn a_member_that_does_not_decode_is_named_with_its_path() {
        let reply = json!([{"device": "ide0", "type": "unknown", "removable": false,
            "locked": false, "inserted": {"ro": "yes"}}]);
        let decoded = serde_json::from_value::<Vec<types::BlockInfo>>(reply);
        let message = match decoded {
            Err(error) => error.to_string(),
            Ok(info) => panic!("decoded {info:?}"),
        };
        assert!(message.starts_with("member `inserted`: "), "{message}");
        assert!(message.contains("missing field `file`"), "{message}");
    }

    #[test]
    fn a_wrong_type_names_the_member_and_what_was_expected() {
        let decoded = serde_json::from_value::<types::StatusInfo>(
            json!({"status": "running", "running": "yes"}),
        );
        let message = match decoded {
            Err(error) => error.to_string(),
            Ok(status) => panic!("decoded {status:?}"),
        };
        assert!(
            message.starts_with("member `running`: invalid type"),
            "{message}"
        );
    }

    #[test]
    fn absent_or_null_optional_members_are_none_and_unknown_ones_are_ignored() {
        for reply in [
            json!({"status": "paused", "running": false}),
            json!({"status": "paused", "running": false, "singlestep": null, "new": [1]}),
        ] {
            let decoded = serde_json::from_value::<types::StatusInfo>(reply.clone());
            match decoded {
                Ok(status) => {
                    assert_eq!(status.status, types::RunState::Paused, "{reply}");
                    assert_eq!(status.singlestep, None, "{reply}");
                }
                Err(error) => panic!("{reply}: {error}"),
            }
        }
    }

    #[test]
    fn a_reply_that_is_not_an_object_is_refused() {
        let decoded = serde_json::from_value::<types::StatusInfo>(json!("running"));
        assert!(
            matches!(&decoded, Err(error) if error.to_string().contains("expected a map")),
            "{decoded:?}"
        );
    }
}
