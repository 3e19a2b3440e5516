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

  const status = (): DocumentStatus | undefined => list.latest?.find((d) => d.id === documentId())?.status;
  const put = (next: DocumentStatus) =>
    mutate((docs) => docs?.map((d) => (d.id === documentId() ? { ...d, status: next } : d)));

  /**
   * `quiet`: a move the page makes of itself (in progress at the first label), whose refusal
   * (403) says nothing (a viewer's page that still thinks its user may write: the server refuses
   * the status as it drops the edit, and says so about the edit). Other failures are said.
   */
  async function set(next: DocumentStatus, quiet = false) {
    const before = status();
    if (before === undefined || before === next) return;
    setError(null);
    setSaving(true);
    put(next);
    try {
      const saved = await api.setStatus(documentId(), next);
      put(saved.status);
    } catch (e) {
      put(before);
      if (!(quiet && e instanceof ApiError && e.status === 403)) setError(errorMessage(e));
    } finally {
      setSaving(false);
    }
  }

  return { status, error, saving, set };
}

export type DocStatus = ReturnType<typeof createDocStatus>;
