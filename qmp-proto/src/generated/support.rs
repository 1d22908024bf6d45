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
