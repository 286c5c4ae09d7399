//! The `Site` service: the seller's identity, contact, terms and retention periods for the public
//! pages, built once at start from the configuration (see [`crate::site_config`]). Public: it
//! answers only what the footer and the legal pages show to anyone.

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::site_server::Site;
use tonic::{Request, Response, Status};

pub struct SiteApi {
    info: pb::SiteInfo,
}

impl SiteApi {
    pub fn new(info: pb::SiteInfo) -> SiteApi {
        SiteApi { info }
    }
}

#[tonic::async_trait]
impl Site for SiteApi {
    async fn get_site_info(
        &self,
        _req: Request<pb::GetSiteInfoRequest>,
    ) -> Result<Response<pb::SiteInfo>, Status> {
        Ok(Response::new(self.info.clone()))
    }
}
