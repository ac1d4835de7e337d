//! A macro for open code spaces: an enum of named byte values plus `Other(u8)`.
//!
//! Modbus devices send codes the specification never assigned (user-defined function codes,
//! vendor exception codes). A closed enum would force the decoder to reject them; this shape
//! keeps every byte representable and round-trippable while named codes stay exhaustive to match.

/// Declares `enum $name { $variant = $value, ..., Other(u8) }` with lossless `From<u8>` and
/// `From<$name> for u8`. `Other(x)` is never produced for a named `x`.
macro_rules! open_byte_enum {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_attr:meta])*
                $variant:ident = $value:expr,
            )+
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                $(#[$variant_attr])*
                $variant,
            )+
            /// A code without a name in this crate, kept as its raw byte.
            Other(u8),
        }

        impl From<u8> for $name {
            fn from(value: u8) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    other => Self::Other(other),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Other(other) => other,
                }
            }
        }

        impl $name {
            /// The code's byte on the wire.
            #[must_use]
            pub fn value(self) -> u8 {
                u8::from(self)
            }
        }
    };
}

pub(crate) use open_byte_enum;
