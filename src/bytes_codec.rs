//! The codec of the lean clients and servers ([`crate::clients`], [`crate::servers`]): tonic
//! frames bytes that prost already encoded or will decode, so tonic's generic call paths are
//! compiled once, for this one message type, instead of once per method.

use bytes::{Buf as _, BufMut as _, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A message as the bytes the codec carries.
pub(crate) fn encode_message(message: &impl prost::Message) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

/// A message from the bytes the codec carried, failing as tonic's prost codec does: a message
/// that does not decode is `INTERNAL`, on either side of a call.
pub(crate) fn decode_message<M: prost::Message + Default>(bytes: Bytes) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| Status::internal(e.to_string()))
}

/// Messages as the bytes prost encoded or will decode.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> BytesCodec {
        BytesCodec
    }

    fn decoder(&mut self) -> BytesCodec {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
