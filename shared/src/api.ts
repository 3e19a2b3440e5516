/**
 * The HTTP API's request validators and response types, shared by server and client.
 * Errors always come as `{ error: { code, message, field? } }` with a 4xx/5xx status.
 */
import { z } from 'zod';
import type { LabelSchema } from './schema.ts';

/** A UTF-16 surrogate without its other half: no character, and stored as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Text a database can hold as it is: PostgreSQL's text refuses the NUL character, and a lone
 * surrogate would be stored as U+FFFD (the text read back would not be the text sent).
 */
const text = () =>
  z
    .string()
    .refine((v) => !v.includes('\0'), 'must not contain the NUL character')
    .refine((v) => !LONE_SURROGATE.test(v), 'must not contain a lone surrogate (half of a UTF-16 pair)');

export const loginBody = z.object({
  username: text().trim().min(1, 'enter a username').max(64, 'no username is longer than 64 characters'),
  password: text().min(1, 'enter the password').max(256, 'no password is longer than 256 characters'),
});

export const newDocumentBody = z.object({
  title: text().trim().min(1).max(500),
  text: text().min(1).max(5_000_000),
  source: text().max(500).optional(),
  /** A web address the document came from: http or https only (the client links to it). */
  url: text()
    .url()
    .max(2000)
    .refine((v) => /^https?:\/\//i.test(v), 'must be an http or https address')
    .optional(),
  publishedAt: text().max(64).optional(),
});

export const memberBody = z.object({
  username: text().trim().min(1).max(64),
  role: z.enum(['owner', 'curator', 'annotator', 'viewer']),
});

export const DOCUMENT_STATUSES = ['not_started', 'in_progress', 'done'] as const;
export type DocumentStatus = (typeof DOCUMENT_STATUSES)[number];
export const statusBody = z.object({ status: z.enum(DOCUMENT_STATUSES) });

/** owner: everything; curator: every layer and gold; annotator: their own layer; viewer: read-only. */
export const ROLES = ['owner', 'curator', 'annotator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];
export type ProjectMode = 'blind' | 'open';

export interface ApiError {
  error: { code: string; message: string; field?: string };
}
export interface Health {
  ok: true;
  db: 'pglite' | 'postgres';
}
export interface Me {
  id: number;
  username: string;
}
export interface ProjectSummary {
  id: number;
  name: string;
  role: Role;
  mode: ProjectMode;
}
export interface Member {
  id: number;
  username: string;
  role: Role;
}
export interface ProjectDetail extends ProjectSummary {
  schema: LabelSchema;
  guidelines: string;
  members: Member[];
}
export interface DocumentSummary {
  id: number;
  title: string;
  length: number;
  status: DocumentStatus;
}
export interface DocumentDetail {
  id: number;
  projectId: number;
  title: string;
  text: string;
  length: number;
  source: string | null;
  url: string | null;
  publishedAt: string | null;
  contentHash: string;
}
