/**
 * Which layers a member is offered on a document, and which one the `?layer=` query picks.
 * Blind mode: an annotator has only their own layer; curators and owners also get every other
 * member's layer (annotators first) and the gold layer; viewers see the annotators' layers and
 * gold. Open mode: everyone works on the gold layer. Whether a layer may be opened at all, and
 * written, is the server's rule (decideRoomAccess): nothing it would refuse is offered, and a
 * layer it opens read-only is offered read-only.
 */
import type { Me, ProjectDetail } from '@spanwise/shared/api';
import { decideRoomAccess, memberFacts } from '@spanwise/shared/access';
import { goldRoom, layerRoom, parseRoom } from '@spanwise/shared/rooms';

export interface LayerOption {
  /** The `?layer=` value: `user:<id>` or `gold`. */
  key: string;
  name: string;
  room: string;
  /** The annotator whose layer it is; null for gold. */
  userId: number | null;
  /** Viewers look but do not write; the server drops their updates. */
  readOnly?: boolean;
}

export function layerOptions(project: ProjectDetail, me: Me, documentId: number): LayerOption[] {
  const facts = memberFacts(project, me.id, documentId);
  return offered(project, me, documentId).flatMap((option) => {
    const access = decideRoomAccess(parseRoom(option.room), me.id, facts);
    return access.ok ? [access.readOnly ? { ...option, readOnly: true } : option] : [];
  });
}

/** The layers this page offers a member with this role, in order (before the access rule). */
function offered(project: ProjectDetail, me: Me, documentId: number): LayerOption[] {
  const gold: LayerOption = { key: 'gold', name: 'Gold (adjudicated)', room: goldRoom(documentId), userId: null };
  const layerOf = (m: { id: number; username: string }): LayerOption => ({ key: `user:${m.id}`, name: `${m.username}’s layer`, room: layerRoom(documentId, m.id), userId: m.id });
  if (project.mode === 'open') return [gold];
  if (project.role === 'viewer') return [gold, ...project.members.filter((m) => m.role === 'annotator').map(layerOf)];
  const own: LayerOption = { key: `user:${me.id}`, name: `My layer (${me.username})`, room: layerRoom(documentId, me.id), userId: me.id };
  if (project.role === 'annotator') return [own];
  const rank = (role: string) => (role === 'annotator' ? 0 : 1);
  const others = project.members
    .filter((m) => m.id !== me.id)
    .sort((a, b) => rank(a.role) - rank(b.role) || a.username.localeCompare(b.username))
    .map(layerOf);
  return [own, ...others, gold];
}

/** The option the query asks for, or the first (the user's own layer, or gold in open mode). */
export function pickLayer(options: LayerOption[], requested: string | undefined): LayerOption {
  return options.find((o) => o.key === requested) ?? options[0]!;
}
