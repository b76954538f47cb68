//! A payload's top-level fields serialized one by one, for payloads that serde_json cannot
//! convert whole (a `u128` past `u64`, a map with non-string keys): the field that fails
//! becomes a string saying so, and the others keep their values. serde has no "fields of"
//! operation, so this is a `Serializer` that accepts a struct or a map and refuses the rest.

use opentelemetry::Value;
use serde::Serialize;

use super::node_events::scalar;

/// A struct or map payload's fields, each serialized on its own (`None` for other payloads).
pub(super) fn fields_one_by_one(payload: &impl Serialize) -> Option<Vec<(String, Value)>> {
    use serde::ser::{Impossible, SerializeMap, SerializeStruct, Serializer};

    /// Collects top-level fields; anything but a struct or map is refused.
    struct Fields(Vec<(String, Value)>, Option<String>);

    fn field_value(value: &(impl Serialize + ?Sized)) -> Value {
        match serde_json::to_value(value) {
            Ok(v) => scalar(v),
            Err(err) => Value::String(format!("<unserializable: {err}>").into()),
        }
    }

    #[derive(Debug)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("not a struct or map")
        }
    }
    impl std::error::Error for Refused {}
    impl serde::ser::Error for Refused {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Refused
        }
    }

    impl SerializeStruct for &mut Fields {
        type Ok = ();
        type Error = Refused;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            value: &T,
        ) -> Result<(), Refused> {
            self.0.push((key.to_string(), field_value(value)));
            Ok(())
        }
        fn end(self) -> Result<(), Refused> {
            Ok(())
        }
    }

    impl SerializeMap for &mut Fields {
        type Ok = ();
        type Error = Refused;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Refused> {
            let key = match serde_json::to_value(key) {
                Ok(serde_json::Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(_) => "<unserializable key>".to_string(),
            };
            self.1 = Some(key);
            Ok(())
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
            let key = self.1.take().unwrap_or_default();
            self.0.push((key, field_value(value)));
            Ok(())
        }
        fn end(self) -> Result<(), Refused> {
            Ok(())
        }
    }

    impl Serializer for &mut Fields {
        type Ok = ();
        type Error = Refused;
        type SerializeSeq = Impossible<(), Refused>;
        type SerializeTuple = Impossible<(), Refused>;
        type SerializeTupleStruct = Impossible<(), Refused>;
        type SerializeTupleVariant = Impossible<(), Refused>;
        type SerializeMap = Self;
        type SerializeStruct = Self;
        type SerializeStructVariant = Impossible<(), Refused>;
        fn serialize_map(self, _: Option<usize>) -> Result<Self, Refused> {
            Ok(self)
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Refused> {
            Ok(self)
        }
        fn serialize_bool(self, _: bool) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_i8(self, _: i8) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_i16(self, _: i16) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_i32(self, _: i32) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_i64(self, _: i64) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_u8(self, _: u8) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_u16(self, _: u16) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_u32(self, _: u32) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_u64(self, _: u64) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_f32(self, _: f32) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_f64(self, _: f64) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_char(self, _: char) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_str(self, _: &str) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_none(self) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Refused> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
        ) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<(), Refused> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Refused> {
            Err(Refused)
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Refused> {
            Err(Refused)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Refused> {
            Err(Refused)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, Refused> {
            Err(Refused)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Refused> {
            Err(Refused)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Refused> {
            Err(Refused)
        }
    }

    let mut fields = Fields(Vec::new(), None);
    payload.serialize(&mut fields).ok()?;
    Some(fields.0)
}
