/** Table interfaces: what the database holds. They are not API types; repositories map rows. */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export interface UsersTable {
  id: Generated<number>;
  username: string;
  password_hash: string;
  created_at: CreatedAt;
}

export interface SessionsTable {
  /** sha256 of the cookie's token: a leaked table does not leak sessions. */
  id: string;
  user_id: number;
  created_at: CreatedAt;
  expires_at: ColumnType<Date, Date, Date>;
}

export interface ProjectsTable {
  id: Generated<number>;
  name: string;
  mode: 'blind' | 'open';
  schema: ColumnType<unknown, string, string>;
  guidelines: ColumnType<string, string | undefined, string>;
  is_demo: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
}

export interface ProjectMembersTable {
  project_id: number;
  user_id: number;
  role: 'owner' | 'curator' | 'annotator' | 'viewer';
}

export interface DocumentsTable {
  id: Generated<number>;
  project_id: number;
  title: string;
  source: string | null;
  url: string | null;
  published_at: string | null;
  text: string;
  text_length: number;
  content_hash: string;
  created_at: CreatedAt;
}

export interface DocumentStatusTable {
  document_id: number;
  user_id: number;
  status: 'not_started' | 'in_progress' | 'done';
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface SyncUpdatesTable {
  id: Generated<string>;
  room: string;
  /** 'update' as received from a client, or 'snapshot': the state of the rows it replaced. */
  kind: ColumnType<'update' | 'snapshot', 'update' | 'snapshot' | undefined, never>;
  data: Uint8Array;
  created_at: CreatedAt;
}

export interface SyncQuarantineTable {
  id: Generated<string>;
  room: string;
  data: Uint8Array;
  error: string;
  created_at: CreatedAt;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  projects: ProjectsTable;
  project_members: ProjectMembersTable;
  documents: DocumentsTable;
  document_status: DocumentStatusTable;
  sync_updates: SyncUpdatesTable;
  sync_quarantine: SyncQuarantineTable;
  sign_in_attempts: SignInAttemptsTable;
}

/** Failed sign-ins per username and client address, within a window that began at since_ms. */
export interface SignInAttemptsTable {
  key: string;
  count: number;
  /** Milliseconds since the epoch (a bigint: drivers read it back as a string or a bigint). */
  since_ms: ColumnType<string | number | bigint, number, number>;
}

export type DocumentRow = Selectable<DocumentsTable>;
export type NewDocumentRow = Insertable<DocumentsTable>;
