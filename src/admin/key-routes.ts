import type { FastifyInstance } from "fastify";
import {
  type ApiKey,
  type IssuedKey,
  KeyListQuery,
  NewAdminKeyBody,
  NewKeyBody,
  RotateBody,
  type RotatedKey,
} from "../contract/admin.js";
import type { Page } from "../contract/common.js";
import { ADMIN_PREFIX } from "../contract/paths.js";
import { type AdminDeps, actorOf } from "./admin-context.js";
import { parseInput } from "./validation.js";

type TenantParams = { Params: { id: string } };
type KeyParams = { Params: { id: string; keyId: string } };
type AdminKeyParams = { Params: { keyId: string } };

export function keyRoutes(app: FastifyInstance, { identity, config }: AdminDeps): void {
  const { admin } = identity;

  app.post<TenantParams & { Reply: IssuedKey }>("/tenants/:id/keys", async (request, reply) => {
    const body = parseInput(NewKeyBody, request.body, "key");
    const { key, secret } = await admin.createKey(actorOf(request), request.params.id, body);
    return reply
      .code(201)
      .header("location", `${ADMIN_PREFIX}/tenants/${request.params.id}/keys/${key.id}`)
      .header("cache-control", "no-store")
      .send({ ...key, secret });
  });

  app.get<TenantParams & { Reply: Page<ApiKey> }>("/tenants/:id/keys", async (request) => {
    const q = parseInput(KeyListQuery, request.query, "query");
    return { items: await admin.listKeys(request.params.id, q.includeRevoked), next: null };
  });

  app.get<KeyParams & { Reply: ApiKey }>("/tenants/:id/keys/:keyId", async (request) =>
    admin.getKey(request.params.id, request.params.keyId),
  );

  app.post<KeyParams & { Reply: ApiKey }>("/tenants/:id/keys/:keyId/revoke", async (request) =>
    admin.revokeKey(actorOf(request), request.params.id, request.params.keyId),
  );

  app.delete<KeyParams & { Reply: ApiKey }>("/tenants/:id/keys/:keyId", async (request) =>
    admin.revokeKey(actorOf(request), request.params.id, request.params.keyId),
  );

  app.post<KeyParams & { Reply: RotatedKey }>("/tenants/:id/keys/:keyId/rotate", async (request, reply) => {
    const body = parseInput(RotateBody, request.body, "rotation");
    const grace = body.graceSeconds ?? config.auth.rotationGraceSeconds;
    const { key, secret, previous } = await admin.rotateKey(
      actorOf(request),
      request.params.id,
      request.params.keyId,
      grace,
    );
    return reply
      .code(201)
      .header("location", `${ADMIN_PREFIX}/tenants/${request.params.id}/keys/${key.id}`)
      .header("cache-control", "no-store")
      .send({ ...key, secret, previous });
  });

  app.post<{ Reply: IssuedKey }>("/admin-keys", async (request, reply) => {
    const body = parseInput(NewAdminKeyBody, request.body, "admin key");
    const { key, secret } = await admin.createAdminKey(actorOf(request), body.name, body.expiresAt);
    return reply
      .code(201)
      .header("location", `${ADMIN_PREFIX}/admin-keys/${key.id}`)
      .header("cache-control", "no-store")
      .send({ ...key, secret });
  });

  app.get<{ Reply: Page<ApiKey> }>("/admin-keys", async (request) => {
    const q = parseInput(KeyListQuery, request.query, "query");
    return { items: await admin.listAdminKeys(q.includeRevoked), next: null };
  });

  app.post<AdminKeyParams & { Reply: ApiKey }>("/admin-keys/:keyId/revoke", async (request) =>
    admin.revokeKey(actorOf(request), null, request.params.keyId),
  );
}
