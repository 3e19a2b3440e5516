import type { DocumentStatus, Role } from '@spanwise/shared/api';

export const STATUS_TEXT: Record<DocumentStatus, string> = {
  not_started: 'Not started',
  in_progress: 'In progress',
  done: 'Done',
};

export const ROLE_TEXT: Record<Role, string> = {
  owner: 'Owner',
  curator: 'Curator',
  annotator: 'Annotator',
  viewer: 'Viewer (read-only)',
};

export const formatLength = (n: number) => `${n.toLocaleString('en')} characters`;

/** Cuts a long quote down for a list or a label, with an ellipsis. */
export function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}
