//! One declaration per stored or sent enum: each variant written once beside its name, and
//! `as_str`, `Display` and `FromStr` generated from that, so the conversions cannot disagree.

/// Declares a fieldless enum with `as_str`, `Display` and `FromStr` over the names it is stored
/// and sent under, each variant's name written once beside it (the variant's own name when
/// omitted), so the conversions cannot disagree. `with ALL` adds a public `ALL`, every variant
/// in declaration order; `unknown` builds the `FromStr` error from the rejected text.
#[macro_export]
macro_rules! wire_names {
    (@name $variant:ident) => { stringify!($variant) };
    (@name $variant:ident $name:literal) => { $name };
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident $(with $all:ident)? {
            $($(#[$variant_meta:meta])* $variant:ident $(= $name:literal)?),+ $(,)?
        }
        unknown: $err:ty = $unknown:expr $(;)?
    ) => {
        $(#[$meta])*
        $vis enum $ty {
            $($(#[$variant_meta])* $variant),+
        }

        impl $ty {
            const VARIANTS: [$ty; [$(stringify!($variant)),+].len()] = [$($ty::$variant),+];
            $(pub const $all: [$ty; $ty::VARIANTS.len()] = $ty::VARIANTS;)?

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $crate::wire_names!(@name $variant $($name)?),)+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $err;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                let unknown: fn(&str) -> $err = $unknown;
                $ty::VARIANTS
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| unknown(s))
            }
        }
    };
}
