//! How model types are stored in database columns, so the domain's rows decode straight into
//! them: enums as their text, [`Timestamp`] as milliseconds, lists as JSON text. Unknown text
//! is a decoding error, never a silent default.

use sqlx::any::{Any, AnyTypeInfo};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::jobs::{JobState, Trigger};
use crate::service::Visibility;
use crate::time::Timestamp;

/// Implements the column traits of a type by way of another one the driver knows.
macro_rules! column_as {
    ($ty:ty as $stored:ty, encode: $encode:expr, decode: $decode:expr) => {
        impl Type<Any> for $ty {
            fn type_info() -> AnyTypeInfo {
                <$stored as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <$stored as Type<Any>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                let stored: $stored = ($encode)(self);
                <$stored as Encode<'q, Any>>::encode(stored, buf)
            }
        }

        impl<'r> Decode<'r, Any> for $ty {
            fn decode(value: <Any as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let stored = <$stored as Decode<'r, Any>>::decode(value)?;
                ($decode)(stored)
            }
        }
    };
}

/// An enum stored as its `as_str` text and read back with its `parse`.
macro_rules! text_enum_column {
    ($($ty:ident),*) => {$(
        column_as!($ty as String,
            encode: |v: &$ty| v.as_str().to_string(),
            decode: |text: String| $ty::parse(&text)
                .ok_or_else(|| format!("unknown {} {text:?}", stringify!($ty)).into()));
    )*};
}

text_enum_column!(JobState, Trigger, Visibility);

column_as!(Timestamp as i64,
    encode: |t: &Timestamp| t.millis(),
    decode: |millis| Ok(Timestamp::from_millis(millis)));

/// A list kept as a JSON array in a TEXT column (a job's outputs). Fields decode it with
/// `#[sqlx(try_from = "JsonList")]`.
pub struct JsonList(pub Vec<String>);

column_as!(JsonList as String,
    encode: |list: &JsonList| serde_json::to_string(&list.0).unwrap_or_else(|_| "[]".into()),
    decode: |text: String| Ok(JsonList(serde_json::from_str(&text)?)));

impl From<JsonList> for Vec<String> {
    fn from(list: JsonList) -> Self {
        list.0
    }
}
