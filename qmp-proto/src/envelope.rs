//! Single-pass decoding of server messages.
//!
//! Parsing into a `Value` and then classifying builds and takes apart a map
//! per message. Replies and events are most of the traffic, so their
//! members are read straight into their slots; everything else is put back
//! into a map and classified by [`ServerMessage::from_value`], so both ways
//! give the same result for every input.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::JsonObject;
use crate::message::{Event, ServerMessage, Success, Timestamp};

/// Parses one JSON object and classifies it like
/// [`ServerMessage::from_value`].
pub(crate) fn server_message(text: &str) -> Result<ServerMessage, serde_json::Error> {
    serde_json::from_str::<Envelope>(text).map(Envelope::classify)
}

/// The top-level members of a server message, by role.
#[derive(Default)]
struct Envelope {
    ret: Option<Value>,
    event: Option<Value>,
    data: Option<Value>,
    timestamp: Option<Value>,
    id: Option<Value>,
    other: JsonObject,
}

impl Envelope {
    fn classify(self) -> ServerMessage {
        let only_return_and_id = self.other.is_empty()
            && self.event.is_none()
            && self.data.is_none()
            && self.timestamp.is_none();
        if let (Some(_), true) = (&self.ret, only_return_and_id) {
            let Envelope { ret, id, .. } = self;
            return ServerMessage::Success(Success::new(ret.unwrap_or(Value::Null), id));
        }
        let mut envelope = self;
        if envelope.ret.is_none() {
            if let Some(event) = envelope.take_event() {
                return event;
            }
        }
        ServerMessage::from_value(Value::Object(envelope.into_map()))
    }

    /// An event of the usual shape, taken out; `None` leaves the envelope
    /// untouched.
    fn take_event(&mut self) -> Option<ServerMessage> {
        let timestamp = self.event_timestamp()?;
        match self.event.take() {
            Some(Value::String(name)) => {
                let data = match self.data.take() {
                    Some(Value::Object(data)) => data,
                    _ => JsonObject::new(),
                };
                Some(ServerMessage::Event(Event::new(name, data, timestamp)))
            }
            other => {
                self.event = other;
                None
            }
        }
    }

    /// The timestamp of an event of the usual shape (a string name, a valid
    /// or absent timestamp, object or absent data); `None` otherwise.
    fn event_timestamp(&self) -> Option<Timestamp> {
        let (Some(Value::String(_)), None | Some(Value::Object(_))) = (&self.event, &self.data)
        else {
            return None;
        };
        match &self.timestamp {
            None => Some(Timestamp::default()),
            Some(value) => {
                let object = value.as_object()?;
                Some(Timestamp {
                    seconds: object.get("seconds")?.as_i64()?,
                    microseconds: object.get("microseconds")?.as_i64()?,
                })
            }
        }
    }

    fn into_map(self) -> JsonObject {
        let mut map = self.other;
        for (key, value) in [
            ("return", self.ret),
            ("event", self.event),
            ("data", self.data),
            ("timestamp", self.timestamp),
            ("id", self.id),
        ] {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        }
        map
    }
}

/// A top-level key: one of the roles, or any other name.
enum Key {
    Return,
    Event,
    Data,
    Timestamp,
    Id,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "return" => Key::Return,
                    "event" => Key::Event,
                    "data" => Key::Data,
                    "timestamp" => Key::Timestamp,
                    "id" => Key::Id,
                    other => Key::Other(other.to_owned()),
                })
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;

        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
                // As in serde_json's map, a repeated key keeps its last value.
                let mut envelope = Envelope::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let value: Value = map.next_value()?;
                    match key {
                        Key::Return => envelope.ret = Some(value),
                        Key::Event => envelope.event = Some(value),
                        Key::Data => envelope.data = Some(value),
                        Key::Timestamp => envelope.timestamp = Some(value),
                        Key::Id => envelope.id = Some(value),
                        Key::Other(name) => {
                            envelope.other.insert(name, value);
                        }
                    }
                }
                Ok(envelope)
            }
        }

        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agrees_with_from_value() {
        for value in [
            json!({"return": {}, "id": 1}),
            json!({"return": [1, 2]}),
            json!({"return": {}, "extra": 1}),
            json!({"return": {}, "event": "X"}),
            json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}),
            json!({"event": "X", "data": {"a": 1}, "id": 5, "extra": true}),
            json!({"event": "X", "data": [1]}),
            json!({"event": 3}),
            json!({"event": "X", "timestamp": {"seconds": "1"}}),
            json!({"error": {"class": "GenericError", "desc": "d"}, "id": "x"}),
            json!({"error": "boom"}),
            json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0},
                "package": ""}, "capabilities": []}}),
            json!({}),
            json!({"unrelated": {"return": 1}}),
        ] {
            let text = value.to_string();
            assert_eq!(
                server_message(&text).ok(),
                Some(ServerMessage::from_value(value.clone())),
                "{value}"
            );
        }
        let duplicate = r#"{"return": 1, "return": 2, "id": 3}"#;
        assert_eq!(
            server_message(duplicate).ok(),
            Some(ServerMessage::Success(Success::new(
                json!(2),
                Some(json!(3))
            )))
        );
    }

    #[test]
    fn non_objects_are_a_syntax_error_here() {
        // The splitter only ever hands over objects.
        let array = server_message("[1]");
        assert!(matches!(&array, Err(e) if e.is_data()), "{array:?}");
        let broken = server_message("{\"return\": }");
        assert!(matches!(&broken, Err(e) if e.is_syntax()), "{broken:?}");
    }
}
