//! Compiles every `.proto` under `proto/` with protox (pure Rust, no system `protoc`) and writes the
//! descriptor set next to the generated code so the services can serve gRPC reflection.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("proto");
    let mut files = Vec::new();
    collect_protos(root, &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed=proto");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let fds = protox::compile(&files, [root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("iafactory_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    std::fs::write(out_dir.join("iafactory_clients.rs"), lean_clients(&fds))?;
    std::fs::write(out_dir.join("iafactory_servers.rs"), lean_servers(&fds)?)?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .include_file("iafactory_protos.rs")
        .compile_fds(fds)?;
    Ok(())
}

/// The clients of `src/clients.rs`: per service, tonic's method names and signatures, each call
/// going through the one shared `Raw` client. Modules follow the packages without their leading
/// `iafactory.` (`iafactory.promo.v1` → `promo::v1`).
fn lean_clients(fds: &prost_types::FileDescriptorSet) -> String {
    use std::fmt::Write as _;

    in_package_modules(fds, |package, service, code| {
        let full = format!("{package}.{}", service.name());
        let client = format!("{}Client", service.name());
        let _ = write!(
            code,
            "/// Client of `{full}`, sharing one compiled copy of tonic's unary path (see the \
             module); the methods are documented on the generated\n\
             /// [`crate::proto`] client of the same name.\n\
             #[derive(Debug, Clone)]\npub struct {client} {{\n    raw: crate::clients::Raw,\n}}\n\n\
             impl {client} {{\n\
             \x20   pub fn new(channel: tonic::transport::Channel) -> Self {{\n\
             \x20       Self {{ raw: crate::clients::Raw::new(channel) }}\n    }}\n\n\
             \x20   /// Limits the size of a decoded answer.\n    #[must_use]\n\
             \x20   pub fn max_decoding_message_size(self, limit: usize) -> Self {{\n\
             \x20       Self {{ raw: self.raw.max_decoding_message_size(limit) }}\n    }}\n\n\
             \x20   /// Limits the size of an encoded request.\n    #[must_use]\n\
             \x20   pub fn max_encoding_message_size(self, limit: usize) -> Self {{\n\
             \x20       Self {{ raw: self.raw.max_encoding_message_size(limit) }}\n    }}\n"
        );
        for method in &service.method {
            if method.client_streaming() {
                continue;
            }
            let (input, output) = (
                rust_type(method.input_type()),
                rust_type(method.output_type()),
            );
            let (call, answer) = if method.server_streaming() {
                (
                    "server_streaming",
                    format!("tonic::codec::Streaming<{output}>"),
                )
            } else {
                ("unary", output)
            };
            let name = method.name();
            let _ = write!(
                code,
                "\n    /// `/{full}/{name}`\n\
                 \x20   pub async fn {fn_name}(\n        &mut self,\n\
                 \x20       request: impl tonic::IntoRequest<{input}>,\n\
                 \x20   ) -> Result<tonic::Response<{answer}>, tonic::Status> {{\n\
                 \x20       self.raw\n            .{call}(\n\
                 \x20               request.into_request(),\n\
                 \x20               \"/{full}/{name}\",\n\
                 \x20               \"{full}\",\n\
                 \x20               \"{name}\",\n            )\n            .await\n    }}\n",
                fn_name = snake_case(name),
            );
        }
        code.push_str("}\n\n");
    })
}

/// The servers of `src/servers.rs`: per service, tonic's server name and builders, each method
/// decoding and encoding with prost around the one shared bytes path.
fn lean_servers(fds: &prost_types::FileDescriptorSet) -> Result<String, String> {
    use std::fmt::Write as _;

    let mut streaming_clients = Vec::new();
    let code = in_package_modules(fds, |package, service, code| {
        let full = format!("{package}.{}", service.name());
        let server = format!("{}Server", service.name());
        let service_trait = format!(
            "{}::{}_server::{}",
            rust_module(package),
            snake_case(service.name()),
            service.name()
        );
        let _ = write!(
            code,
            "/// Server of `{full}`, sharing one compiled copy of tonic's server path (see the \
             module); serves the generated [`{service_trait}`] trait.\n\
             #[derive(Debug)]\npub struct {server}<T> {{\n\
             \x20   inner: std::sync::Arc<T>,\n    limits: crate::servers::Limits,\n}}\n\n\
             impl<T> Clone for {server}<T> {{\n\
             \x20   fn clone(&self) -> Self {{\n\
             \x20       Self {{ inner: std::sync::Arc::clone(&self.inner), limits: self.limits }}\n    }}\n}}\n\n\
             impl<T> {server}<T> {{\n\
             \x20   pub fn new(inner: T) -> Self {{\n        Self::from_arc(std::sync::Arc::new(inner))\n    }}\n\n\
             \x20   pub fn from_arc(inner: std::sync::Arc<T>) -> Self {{\n\
             \x20       Self {{ inner, limits: crate::servers::Limits::default() }}\n    }}\n\n\
             \x20   /// Limits the size of a decoded request (tonic's default is 4 MiB).\n    #[must_use]\n\
             \x20   pub fn max_decoding_message_size(mut self, limit: usize) -> Self {{\n\
             \x20       self.limits.decoding = Some(limit);\n        self\n    }}\n\n\
             \x20   /// Limits the size of an encoded answer.\n    #[must_use]\n\
             \x20   pub fn max_encoding_message_size(mut self, limit: usize) -> Self {{\n\
             \x20       self.limits.encoding = Some(limit);\n        self\n    }}\n}}\n\n\
             impl<T> tonic::server::NamedService for {server}<T> {{\n\
             \x20   const NAME: &'static str = \"{full}\";\n}}\n\n\
             impl<T: {service_trait}> tower::Service<http::Request<tonic::body::Body>> for {server}<T> {{\n\
             \x20   type Response = http::Response<tonic::body::Body>;\n\
             \x20   type Error = std::convert::Infallible;\n\
             \x20   type Future = crate::servers::Answer;\n\n\
             \x20   fn poll_ready(\n        &mut self,\n        _cx: &mut std::task::Context<'_>,\n\
             \x20   ) -> std::task::Poll<Result<(), std::convert::Infallible>> {{\n\
             \x20       std::task::Poll::Ready(Ok(()))\n    }}\n\n\
             \x20   fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {{\n\
             \x20       let inner = std::sync::Arc::clone(&self.inner);\n\
             \x20       match request.uri().path() {{\n"
        );
        for method in &service.method {
            let name = method.name();
            if method.client_streaming() {
                streaming_clients.push(format!("/{full}/{name}"));
                continue;
            }
            let input = rust_type(method.input_type());
            let (call, encode, answer) = if method.server_streaming() {
                (
                    "server_streaming",
                    "encode_stream",
                    "crate::servers::MessageStream",
                )
            } else {
                ("unary", "encode", "bytes::Bytes")
            };
            let _ = write!(
                code,
                "            \"/{full}/{name}\" => self.limits.{call}(\n\
                 \x20               request,\n\
                 \x20               Box::new(move |request| -> crate::servers::Work<{answer}> {{\n\
                 \x20                   Box::pin(async move {{\n\
                 \x20                       let request = crate::servers::decode::<{input}>(request)?;\n\
                 \x20                       let answer = <T as {service_trait}>::{fn_name}(&inner, request).await?;\n\
                 \x20                       Ok(crate::servers::{encode}(answer))\n\
                 \x20                   }})\n                }}),\n            ),\n",
                fn_name = snake_case(name),
            );
        }
        code.push_str("            _ => crate::servers::unimplemented(),\n        }\n    }\n}\n\n");
    });
    if streaming_clients.is_empty() {
        Ok(code)
    } else {
        Err(format!(
            "client-streaming methods have no lean server yet: {}",
            streaming_clients.join(", ")
        ))
    }
}

/// One module per package, without its leading `iafactory.` (`iafactory.promo.v1` →
/// `promo::v1`), holding what `per_service` writes for each of its services.
fn in_package_modules(
    fds: &prost_types::FileDescriptorSet,
    mut per_service: impl FnMut(&str, &prost_types::ServiceDescriptorProto, &mut String),
) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    let mut by_package: BTreeMap<&str, String> = BTreeMap::new();
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            per_service(package, service, by_package.entry(package).or_default());
        }
    }
    let mut out = String::new();
    for (package, code) in by_package {
        let path: Vec<&str> = package.split('.').skip(1).collect();
        for m in &path {
            let _ = writeln!(out, "pub mod {m} {{");
        }
        out.push_str(&code);
        for _ in &path {
            out.push_str("}\n");
        }
    }
    out
}

/// The Rust path of a package's module in the generated `crate::proto`.
fn rust_module(package: &str) -> String {
    format!("crate::proto::{}", package.replace('.', "::"))
}

/// The Rust path of a message named `.pkg.sub.Name` in the generated `crate::proto`.
fn rust_type(proto: &str) -> String {
    let parts: Vec<&str> = proto.trim_start_matches('.').split('.').collect();
    match parts.as_slice() {
        ["google", "protobuf", name] => format!("::prost_types::{name}"),
        _ => format!("crate::proto::{}", parts.join("::")),
    }
}

/// `GetKeysUsage` → `get_keys_usage`, as tonic names client methods.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
