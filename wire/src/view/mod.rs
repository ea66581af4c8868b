//! Verified, zero-copy views of received frames.
//!
//! `decode_*` verify the whole frame first, then check what the verifier
//! lets through for forward compatibility but this build cannot act on:
//! union members it does not know and out-of-range enum values. A view that
//! comes back `Ok` can be read without further checks; every accessor
//! borrows from the frame.

mod peer;
mod request;
mod response;

pub use peer::{decode_peer_frame, PeerFrameView, PeerMessageView};
pub use request::{
    decode_request, decode_verified_request, RequestBodyView, RequestOpView, RequestView,
};
pub use response::{
    decode_response, decode_verified_response, ErrorView, ResponseBodyView, ResponseOpView,
    ResponseView,
};

use crate::error::WireError;

/// Declares an enum with one variant per member of a flatbuffers union, and
/// its conversion from the table holding the union.
macro_rules! union_view {
    (
        $(#[$meta:meta])*
        pub enum $name:ident from $module:ident :: $holder:ident . $type_fn:ident as $union:ident {
            missing: $missing:expr,
            unknown: $unknown:expr,
            $($variant:ident ( $ty:ident ) = $accessor:ident,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum $name<'a> {
            $($variant($crate::$module::$ty<'a>),)*
        }

        impl<'a> $name<'a> {
            /// The view of `holder`'s union member; an error if it is absent
            /// or of a type this build does not know.
            pub fn new(holder: $crate::$module::$holder<'a>) -> Result<Self, $crate::error::WireError> {
                use $crate::$module::$union as U;
                let unknown: fn(u8) -> $crate::error::WireError = $unknown;
                match holder.$type_fn() {
                    $(U::$ty => holder.$accessor().map(Self::$variant).ok_or($missing),)*
                    U::NONE => Err($missing),
                    other => Err(unknown(other.0)),
                }
            }

            /// The flatbuffers table name of this member, for logs and metrics.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($ty),)*
                }
            }
        }
    };
}
pub(crate) use union_view;

/// Checks that a generated enum value is one this build knows.
pub(crate) fn known_enum(
    field: &'static str,
    name: Option<&'static str>,
    value: i64,
) -> Result<(), WireError> {
    match name {
        Some(_) => Ok(()),
        None => Err(WireError::UnknownEnumValue { field, value }),
    }
}
