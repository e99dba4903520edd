use async_graphql::{Context, Enum, Object, SimpleObject, ID};

use crate::api::input::{
    badge_key, badge_value, token_lifetime, AddBody, RegisterBody, RoleBody, UpdateBody,
};
use crate::api::TokenView;
use crate::app::{HarvestStart as AppHarvestStart, OrganizationChange, Registration, Role};
use crate::domain::Actor;

use super::types::{Account, Organization};
use super::{account_id, admin, app, gql, org_id};

/// Whether asking for a harvest started one.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "AppHarvestStart")]
pub enum HarvestStart {
    /// A harvest started now.
    Started,
    /// One was running already; it runs once more when it ends.
    AlreadyRunning,
}

/// A token just made.
#[derive(SimpleObject)]
pub struct CreatedToken {
    /// The bearer token, shown this once; only its hash is kept.
    token: String,
    /// What is listed of it.
    info: TokenView,
}

/// What admins may change.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Registers an organization after checking its role (R3); a harvest starts.
    async fn register_organization(
        &self,
        ctx: &Context<'_>,
        input: RegisterBody,
    ) -> async_graphql::Result<Organization> {
        let who = admin(ctx)?;
        let registration = Registration::try_from(input).map_err(gql)?;
        let org = app(ctx)?
            .register_organization(&Actor::token(&who.name), registration)
            .await
            .map_err(gql)?;
        Ok(org.into())
    }

    /// Edits an organization: nickname, filters, or both roles with every field (R13).
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateBody,
    ) -> async_graphql::Result<Organization> {
        let who = admin(ctx)?;
        let change = OrganizationChange::try_from(input).map_err(gql)?;
        let org = app(ctx)?
            .update_organization(&Actor::token(&who.name), &org_id(id)?, change)
            .await
            .map_err(gql)?;
        Ok(org.into())
    }

    /// Removes an organization and its accounts from the listing; their history stays.
    async fn remove_organization(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let who = admin(ctx)?;
        app(ctx)?
            .remove_organization(&Actor::token(&who.name), &org_id(id)?)
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Starts a harvest unless one is running.
    async fn start_harvest(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<HarvestStart> {
        admin(ctx)?;
        let started = app(ctx)?.request_harvest(&org_id(id)?).await.map_err(gql)?;
        Ok(started.into())
    }

    /// Adds or changes a manual badge.
    async fn add_badge(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        key: String,
        value: String,
    ) -> async_graphql::Result<Account> {
        let who = admin(ctx)?;
        let (key, value) = (
            badge_key(key).map_err(gql)?,
            badge_value(value).map_err(gql)?,
        );
        let account = app(ctx)?
            .add_badge(
                &Actor::token(&who.name),
                &self::account_id(account_id)?,
                key,
                value,
            )
            .await
            .map_err(gql)?;
        Ok(account.into())
    }

    /// Removes a manual badge.
    async fn remove_badge(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        key: String,
    ) -> async_graphql::Result<bool> {
        let who = admin(ctx)?;
        let key = badge_key(key).map_err(gql)?;
        app(ctx)?
            .remove_badge(
                &Actor::token(&who.name),
                &self::account_id(account_id)?,
                key,
            )
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Adds a standalone account, after assuming its role (R12).
    async fn add_account(
        &self,
        ctx: &Context<'_>,
        input: AddBody,
    ) -> async_graphql::Result<Account> {
        let who = admin(ctx)?;
        let (id, name, role) = input.parse().map_err(gql)?;
        let account = app(ctx)?
            .add_standalone_account(&Actor::token(&who.name), &id, name, role)
            .await
            .map_err(gql)?;
        Ok(account.into())
    }

    /// Replaces a standalone account's role, after assuming it; `conflict` for an account an
    /// organization manages (R12).
    async fn replace_account_role(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
        input: RoleBody,
    ) -> async_graphql::Result<Account> {
        let who = admin(ctx)?;
        let id = self::account_id(account_id)?;
        let role = input.parse(&id).map_err(gql)?;
        let account = app(ctx)?
            .replace_account_credentials(&Actor::token(&who.name), &id, role)
            .await
            .map_err(gql)?;
        Ok(account.into())
    }

    /// Deletes a standalone account; its history stays. Refused for an account an
    /// organization manages (R12).
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        account_id: ID,
    ) -> async_graphql::Result<bool> {
        let who = admin(ctx)?;
        app(ctx)?
            .delete_account(&Actor::token(&who.name), &self::account_id(account_id)?)
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Makes a token; its secret is in the answer, this once. `expiresInSeconds` left out
    /// makes one that never expires. A new admin token removes the first admin token's file.
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        role: Role,
        expires_in_seconds: Option<i64>,
    ) -> async_graphql::Result<CreatedToken> {
        admin(ctx)?;
        let lifetime = token_lifetime(expires_in_seconds).map_err(gql)?;
        let (info, secret) = app(ctx)?
            .create_token(role, &name, lifetime)
            .await
            .map_err(gql)?;
        Ok(CreatedToken {
            token: secret.expose().clone(),
            info: info.into(),
        })
    }

    /// Revokes a token for good: refused at once here, by other instances within a second.
    async fn revoke_token(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<bool> {
        admin(ctx)?;
        app(ctx)?.revoke_token(&name).await.map_err(gql)?;
        Ok(true)
    }
}
