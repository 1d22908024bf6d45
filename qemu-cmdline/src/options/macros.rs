//! `keyval_option!` defines a typed `key=value,…` option: a struct with one
//! `Option` field per known key, repeated keys as `Vec`s, free `props` for
//! everything else, by-value setters, rendering and parsing.

macro_rules! keyval_option {
    (
        $(#[$meta:meta])*
        $name:ident { option: $opt:literal, implied: $implied:expr $(,)? }
        fields { $( $(#[$fmeta:meta])* $field:ident : $ty:ty [$arg:ty] = $key:literal; )* }
        lists { $( $(#[$lmeta:meta])* $lfield:ident : $lty:ty [$larg:ty] = $lkey:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            $( $(#[$lmeta])* pub $lfield: Vec<$lty>, )*
            /// Further properties, rendered after the typed ones, in order.
            pub props: Vec<(String, std::ffi::OsString)>,
        }

        impl $name {
            /// The option as written on the command line.
            pub const OPTION: &'static str = $opt;
            const IMPLIED: Option<&'static str> = $implied;

            $(
                #[doc = concat!("Sets `", $key, "`.")]
                pub fn $field(mut self, value: $arg) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
            $(
                #[doc = concat!("Adds one `", $lkey, "` (repeatable).")]
                pub fn $lfield(mut self, value: $larg) -> Self {
                    self.$lfield.push(value.into());
                    self
                }
            )*

            /// Adds any other property; the key is checked and the value
            /// escaped when the option is rendered.
            pub fn prop(mut self, key: impl Into<String>, value: impl AsRef<std::ffi::OsStr>) -> Self {
                self.props.push((key.into(), value.as_ref().to_owned()));
                self
            }

            /// Parses this option's argument (`key=value,…`, with `,,`).
            pub fn parse(value: impl AsRef<std::ffi::OsStr>) -> Result<Self, crate::Error> {
                let entries = crate::keyval::split(Self::OPTION, value.as_ref(), Self::IMPLIED)?;
                Ok(Self::from_entries(entries))
            }

            /// Renders this option's argument, escaped.
            pub fn render(&self) -> Result<std::ffi::OsString, crate::Error> {
                crate::keyval::render(Self::OPTION, Self::IMPLIED, &self.entries())
            }

            fn entries(&self) -> Vec<(String, std::ffi::OsString)> {
                #[allow(unused_imports)]
                use crate::value::PropValue as _;
                let mut out = Vec::new();
                $( if let Some(value) = &self.$field { out.push(($key.to_owned(), value.to_os())); } )*
                $( for value in &self.$lfield { out.push(($lkey.to_owned(), value.to_os())); } )*
                out.extend(self.props.iter().cloned());
                out
            }

            fn from_entries(entries: Vec<(String, std::ffi::OsString)>) -> Self {
                #[allow(unused_imports)]
                use crate::value::PropValue;
                let mut out = Self::default();
                for (key, value) in entries {
                    $(
                        if key == $key && out.$field.is_none() {
                            if let Some(typed) = <$ty as PropValue>::from_os(&value) {
                                out.$field = Some(typed);
                                continue;
                            }
                        }
                    )*
                    $(
                        if key == $lkey {
                            if let Some(typed) = <$lty as PropValue>::from_os(&value) {
                                out.$lfield.push(typed);
                                continue;
                            }
                        }
                    )*
                    out.props.push((key, value));
                }
                out
            }
        }
    };
}
