//! What the generated code calls: the (de)serialisation of structs and
//! unions (member by member) and of enumerations.

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

/// An object built member by member by a generated `Serialize`: a few
/// lines per struct where serde's derive writes dozens, which made the
/// crate slow to compile.
#[derive(Default)]
pub(crate) struct ObjectWriter {
    object: JsonObject,
    /// The first member that did not serialise.
    error: Option<serde_json::Error>,
}

impl ObjectWriter {
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
}

/// A received object's members, taken out one by one by a generated
/// `Deserialize` (through [`FromValue`]), where serde's derive writes a
/// visitor of hundreds of lines. Members this crate does not know stay
/// behind, ignored.
pub(crate) struct Members {
    object: JsonObject,
}

impl Members {
    /// The members of `value`, which must be an object.
    pub(crate) fn take<E: serde::de::Error>(value: Value) -> Result<Self, E> {
        match value {
            Value::Object(object) => Ok(Self { object }),
            other => Err(invalid_type(&other, "an object")),
        }
    }

    /// A union's tag: the string member `name`, left in place for the
    /// base to read.
    pub(crate) fn tag<E: serde::de::Error>(&self, name: &'static str) -> Result<String, E> {
        match self.object.get(name) {
            Some(Value::String(tag)) => Ok(tag.clone()),
            Some(other) => Err(E::custom(format_args!(
                "member `{name}`: {}",
                invalid_type::<E>(other, "a string")
            ))),
            None => Err(E::missing_field(name)),
        }
    }

    /// The members not taken yet.
    pub(crate) fn object(&self) -> &JsonObject {
        &self.object
    }

    /// A union's variant, from the members its base did not take.
    pub(crate) fn rest<T: FromValue, E: serde::de::Error>(&mut self) -> Result<T, E> {
        T::from_value(Value::Object(std::mem::take(&mut self.object)))
    }

    /// The member `name`, which must be there.
    pub(crate) fn required<T: FromValue, E: serde::de::Error>(
        &mut self,
        name: &'static str,
    ) -> Result<T, E> {
        match self.object.remove(name) {
            Some(value) => T::from_value(value).map_err(|error| in_member(name, &error)),
            None => Err(E::missing_field(name)),
        }
    }

    /// The member `name`, `None` when absent or `null`.
    pub(crate) fn optional<T: FromValue, E: serde::de::Error>(
        &mut self,
        name: &'static str,
    ) -> Result<Option<T>, E> {
        match self.object.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_value(value)
                .map(Some)
                .map_err(|error| in_member(name, &error)),
        }
    }
}

/// Names the member whose value did not decode, so a nested error reads
/// as a path: "member `inserted`: member `ro`: invalid type…".
fn in_member<E: serde::de::Error>(name: &str, error: &E) -> E {
    E::custom(format_args!("member `{name}`: {error}"))
}

/// serde's "invalid type: …, expected …" for a JSON value.
fn invalid_type<E: serde::de::Error>(value: &Value, expected: &'static str) -> E {
    use serde::de::Unexpected;
    let unexpected = match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Unexpected::Signed(i),
            (_, Some(u), _) => Unexpected::Unsigned(u),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    };
    E::invalid_type(unexpected, &expected)
}

/// Decoding from a [`Value`] the generated types own, moving its parts
/// into the result: serde's `Deserialize` from a `Value` would copy every
/// nested object once per level. Generic over the error so nothing is
/// compiled until a caller decodes the type.
pub(crate) trait FromValue: Sized {
    /// `value` as `Self`.
    fn from_value<E: serde::de::Error>(value: Value) -> Result<Self, E>;
}

/// Reads any input into a [`Value`], then decodes that with [`FromValue`]:
/// the generated types' `Deserialize`.
pub(crate) fn deserialize<'de, T: FromValue, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    T::from_value(Value::deserialize(deserializer)?)
}

/// [`FromValue`] through the type's own `Deserialize`, for leaves.
macro_rules! from_value_by_deserialize {
    ($($ty:ty),*) => {$(
        impl FromValue for $ty {
            fn from_value<E: serde::de::Error>(value: Value) -> Result<Self, E> {
                <$ty>::deserialize(value).map_err(E::custom)
            }
        }
    )*};
}

from_value_by_deserialize!(String, i64, f64, bool, (), crate::Empty, JsonObject);

impl FromValue for Value {
    fn from_value<E: serde::de::Error>(value: Value) -> Result<Self, E> {
        Ok(value)
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value<E: serde::de::Error>(value: Value) -> Result<Self, E> {
        match value {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    T::from_value(item)
                        .map_err(|error: E| E::custom(format_args!("item {index}: {error}")))
                })
                .collect(),
            other => Err(invalid_type(&other, "an array")),
        }
    }
}

impl<T: FromValue> FromValue for Box<T> {
    fn from_value<E: serde::de::Error>(value: Value) -> Result<Self, E> {
        T::from_value(value).map(Box::new)
    }
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
            matches!(&decoded, Err(error) if error.to_string().contains("expected an object")),
            "{decoded:?}"
        );
    }

    #[test]
    fn a_union_reads_its_base_and_the_variant_its_tag_names() {
        let info = json!({"name": "MyStruct", "meta-type": "object", "features": ["x"],
            "members": [{"name": "a", "type": "int"}], "tag": "a", "new": true});
        let decoded = serde_json::from_value::<types::SchemaInfo>(info);
        match decoded {
            Ok(types::SchemaInfo {
                base,
                variant: types::SchemaInfoVariant::Object(object),
                ..
            }) => {
                assert_eq!(base.name, "MyStruct");
                assert_eq!(base.meta_type, types::SchemaMetaType::Object);
                assert_eq!(base.features, Some(vec!["x".to_owned()]));
                assert_eq!(object.members.len(), 1, "{object:?}");
                assert_eq!(object.tag.as_deref(), Some("a"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_union_variant_this_crate_does_not_know_keeps_every_member_as_sent() {
        let info = json!({"name": "x", "meta-type": "hologram", "depth": 3});
        let decoded = serde_json::from_value::<types::SchemaInfo>(info.clone());
        match decoded {
            Ok(types::SchemaInfo {
                base,
                variant: types::SchemaInfoVariant::Other(kept),
                ..
            }) => {
                assert_eq!(base.meta_type.as_str(), "hologram");
                assert_eq!(serde_json::Value::Object(kept), info);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_union_tag_that_is_not_a_string_is_named() {
        let decoded =
            serde_json::from_value::<types::SchemaInfo>(json!({"name": "x", "meta-type": 7}));
        let message = match decoded {
            Err(error) => error.to_string(),
            Ok(info) => panic!("decoded {info:?}"),
        };
        assert!(
            message.starts_with("member `meta-type`: invalid type: integer `7`"),
            "{message}"
        );
    }

    #[test]
    fn a_list_item_that_does_not_decode_is_named_by_its_index() {
        let decoded = serde_json::from_value::<types::SchemaInfoObject>(json!({
            "members": [{"name": "a", "type": "int"}, {"name": "b"}]}));
        let message = match decoded {
            Err(error) => error.to_string(),
            Ok(object) => panic!("decoded {object:?}"),
        };
        assert_eq!(message, "member `members`: item 1: missing field `type`");
    }
}
