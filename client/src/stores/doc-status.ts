/**
 * The signed-in user's status on one document, read from the project's document list and
 * changed optimistically: the new status shows at once and rolls back if the server refuses.
 */
import { createResource, createSignal, type Accessor } from 'solid-js';
import type { DocumentStatus } from '@spanwise/shared/api';
import { api, ApiError, errorMessage } from '../api/client.ts';

export function createDocStatus(projectId: Accessor<number>, documentId: Accessor<number>) {
  const [list, { mutate }] = createResource(projectId, api.documents);
  const [error, setError] = createSignal<string | null>(null);
  const [saving, setSaving] = createSignal(false);

  // (A list that failed to load has no statuses: the button is left out, the page stays.)
  const status = (): DocumentStatus | undefined => (list.error ? undefined : list.latest)?.find((d) => d.id === documentId())?.status;
  /** Sets document `id`'s status in the list (the one asked about: the page may show another by the answer). */
  const put = (id: number, next: DocumentStatus) => mutate((docs) => docs?.map((d) => (d.id === id ? { ...d, status: next } : d)));

  /**
   * `quiet`: a move the page makes of itself (in progress at the first label), whose refusal
   * (403) says nothing (a viewer's page that still thinks its user may write: the server refuses
   * the status as it drops the edit, and says so about the edit). Other failures are said.
   */
  async function set(next: DocumentStatus, quiet = false) {
    const before = status();
    if (before === undefined || before === next) return;
    const id = documentId();
    setError(null);
    setSaving(true);
    put(id, next);
    try {
      const saved = await api.setStatus(id, next);
      put(id, saved.status);
    } catch (e) {
      put(id, before);
      if (!(quiet && e instanceof ApiError && e.status === 403)) setError(errorMessage(e));
    } finally {
      setSaving(false);
    }
  }

  return { status, error, saving, set };
}

export type DocStatus = ReturnType<typeof createDocStatus>;
