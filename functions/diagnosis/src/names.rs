//! Enums whose variants have wire names, written once: the list of every variant, the
//! name (the variant's own, or the one given with `= "name"`), serialisation, and a
//! deserialisation that reads a name it does not know (from a newer producer) as the
//! enum's catch-all, or refuses it when the enum has none.

/// A name from a fixed list (an evidence kind, a subject format): what a reader makes of
/// the wire's string. An alias so that serde's derive does not take the field for text
/// borrowed from the input.
pub type KnownName = &'static str;

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident $(= $wire:literal)?,)+
        }
        $(unknown => $fallback:ident)?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $crate::names::wire_name!($variant $(, $wire)?),)+
                }
            }

            /// The variant of this name, if there is one.
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                match $name::from_name(&name) {
                    Some(variant) => Ok(variant),
                    None => $crate::names::unknown_name!(D, name, $name $(, $fallback)?),
                }
            }
        }
    };
}

macro_rules! wire_name {
    ($variant:ident) => {
        stringify!($variant)
    };
    ($variant:ident, $wire:literal) => {
        $wire
    };
}

macro_rules! unknown_name {
    ($d:ident, $text:ident, $name:ident, $fallback:ident) => {
        Ok($name::$fallback)
    };
    ($d:ident, $text:ident, $name:ident) => {{
        let names: Vec<&'static str> = $name::ALL.iter().map(|v| v.as_str()).collect();
        Err(<$d::Error as serde::de::Error>::custom(format!(
            "unknown {} {:?}, expected one of {}",
            stringify!($name),
            $text,
            names.join(", ")
        )))
    }};
}

pub(crate) use named_enum;
pub(crate) use unknown_name;
pub(crate) use wire_name;

/// A member that does not read as `T` is `None`, not an error: one malformed optional
/// member must not cost the reader the whole message.
pub(crate) fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

/// The items that read as `T`; the others (a kind a newer producer added) are left out.
pub(crate) fn lenient_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = <serde_json::Value as serde::Deserialize>::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}
