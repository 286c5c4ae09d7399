//! A gRPC service the crate's tests call, to compare the lean clients and servers with tonic's.

use tonic::{Request, Response, Status};

use crate::proto::iafactory::promo::v1::{GetSiteInfoRequest, SiteInfo, site_server};

/// Answers by the `mode` the request's metadata names, echoing its `x-request-id`.
pub(crate) struct Echo;

#[tonic::async_trait]
impl site_server::Site for Echo {
    async fn get_site_info(
        &self,
        req: Request<GetSiteInfoRequest>,
    ) -> Result<Response<SiteInfo>, Status> {
        let md = req.metadata();
        let get = |k: &str| md.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        let seller_name = match get("mode") {
            "fail" => return Err(Status::permission_denied("réservé aux opérateurs")),
            "big" => "x".repeat(4096),
            _ => get("x-request-id").to_owned(),
        };
        let mut answer = Response::new(SiteInfo {
            seller_name,
            ..SiteInfo::default()
        });
        answer
            .metadata_mut()
            .insert("x-answer", "oui".parse().unwrap());
        Ok(answer)
    }
}
