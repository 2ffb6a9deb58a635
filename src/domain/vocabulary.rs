//! The one way words of the domain are defined: an enum whose variants each
//! have a fixed name, stored in the database, shown in the API and parsed
//! back. `string_enum!` gives it `ALL`, `as_str`, `Display`, `FromStr`,
//! serde as that name, and comparison with a plain string.

/// Defines a string-named enum.
///
/// ```ignore
/// string_enum! {
///     /// Doc.
///     #[derive(utoipa::ToSchema)]        // extra derives, if any
///     pub enum Colour ("colour") { Red = "red", DarkBlue = "dark_blue" }
/// }
/// ```
/// The quoted word after the name is how parse errors name the kind of thing.
#[macro_export]
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The stored and shown name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    other => Err(format!(
                        "unknown {} {other:?}: expected {}",
                        $what,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

#[cfg(test)]
mod tests {
    string_enum! {
        /// A test word.
        enum Colour ("colour") { Red = "red", DarkBlue = "dark_blue" }
    }

    #[test]
    fn names_round_trip_everywhere() {
        for colour in Colour::ALL {
            assert_eq!(colour.as_str().parse::<Colour>(), Ok(colour));
            let json = serde_json::to_string(&colour).unwrap();
            assert_eq!(json, format!("\"{colour}\""));
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), colour);
        }
        assert_eq!(Colour::DarkBlue, "dark_blue");
        assert_eq!(
            "green".parse::<Colour>(),
            Err("unknown colour \"green\": expected red, dark_blue".to_string())
        );
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
    }
}
