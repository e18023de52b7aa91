//! Shared vocabulary: references, HAL links, size units and the string-enum macro.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One kibibyte (1024 bytes). ONTAP size suffixes are powers of 1024.
pub const KIB: u64 = 1024;
/// One mebibyte.
pub const MIB: u64 = 1024 * KIB;
/// One gibibyte.
pub const GIB: u64 = 1024 * MIB;
/// One tebibyte.
pub const TIB: u64 = 1024 * GIB;
/// One pebibyte.
pub const PIB: u64 = 1024 * TIB;

/// Generates a string enum with an `Unknown(String)` arm.
///
/// Every generated enum serializes to its wire string, deserializes any string
/// (unknown values land in `Unknown` and re-serialize verbatim), and offers
/// `as_str()`, `Display`, `FromStr` (infallible) and `From<&str>`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know yet, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// The string ONTAP uses for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $value, )+
                    Self::Unknown(other) => other.as_str(),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::from(value.as_ref()))
            }
        }
    };
}
pub(crate) use string_enum;

/// Generates chainable setters for `Option<T>` fields of a request body.
///
/// * `field: T` takes a `T` (numbers, flags, enums: literals infer), `field: into T` takes
///   `impl Into<T>` (strings, references); both set `self.field`.
/// * `name => record.field: [into] T` sets one field of the sub-record `self.record`
///   (an `Option` of a `Default` type), creating the record if absent and keeping what
///   other setters put there (`junction_path => nas.path`).
/// * `name => new record.field: [into] T` replaces `self.record` with a fresh record that
///   holds only that field (`tiering_policy => new tiering.policy`).
macro_rules! setters {
    () => {};
    ( $(#[$meta:meta])* $name:ident => new $record:ident . $field:ident : into $ty:ty $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$record.insert(Default::default()).$field = Some(value.into());
            self
        }
        $( $crate::models::common::setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* $name:ident => new $record:ident . $field:ident : $ty:ty $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$record.insert(Default::default()).$field = Some(value);
            self
        }
        $( $crate::models::common::setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* $name:ident => $record:ident . $field:ident : into $ty:ty $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$record.get_or_insert_with(Default::default).$field = Some(value.into());
            self
        }
        $( $crate::models::common::setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* $name:ident => $record:ident . $field:ident : $ty:ty $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$record.get_or_insert_with(Default::default).$field = Some(value);
            self
        }
        $( $crate::models::common::setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* $field:ident : into $ty:ty $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn $field(mut self, value: impl Into<$ty>) -> Self {
            self.$field = Some(value.into());
            self
        }
        $( $crate::models::common::setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* $field:ident : $ty:ty $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn $field(mut self, value: $ty) -> Self {
            self.$field = Some(value);
            self
        }
        $( $crate::models::common::setters! { $($rest)* } )?
    };
}
pub(crate) use setters;

/// A HAL hyperlink: `{"href": "/api/..."}`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Href {
    /// Absolute path of the linked resource, including any query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `_links` object of a record or collection.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Links {
    /// Link to the record itself (`self`).
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    pub self_link: Option<Href>,
    /// Link to the next page of a collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Href>,
    /// Other links, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Links {
    /// The `self` href, if present.
    pub fn self_href(&self) -> Option<&str> {
        self.self_link.as_ref()?.href.as_deref()
    }
}

/// A reference to another record by name and/or UUID (SVM, aggregate, volume, node, policy...).
///
/// In request bodies, fill only one of `name` or `uuid`; `From<&str>` builds a by-name
/// reference.
///
/// ```
/// use ontap_client::models::NamedRef;
///
/// let by_name: NamedRef = "svm1".into();
/// assert_eq!(serde_json::to_string(&by_name).unwrap(), r#"{"name":"svm1"}"#);
/// let by_uuid = NamedRef::uuid("6bf967fd-2a1c-11e9-b682-005056bbc17d");
/// assert_eq!(by_uuid.name, None);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedRef {
    /// Name of the referenced record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// UUID of the referenced record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// HAL links of the referenced record.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NamedRef {
    /// A reference by name.
    pub fn name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// A reference by UUID.
    pub fn uuid(uuid: impl Into<String>) -> Self {
        Self {
            uuid: Some(uuid.into()),
            ..Self::default()
        }
    }

    /// The name, or the UUID when there is no name: handy for messages.
    pub fn label(&self) -> Option<&str> {
        self.name.as_deref().or(self.uuid.as_deref())
    }
}

impl From<&str> for NamedRef {
    fn from(name: &str) -> Self {
        Self::name(name)
    }
}

impl From<String> for NamedRef {
    fn from(name: String) -> Self {
        Self::name(name)
    }
}

impl From<&String> for NamedRef {
    fn from(name: &String) -> Self {
        Self::name(name.as_str())
    }
}
