/** Label schema: which span and relation labels a project uses, their colours and shortcut keys. */
import { z } from 'zod';

/** What a span label's name may be. */
export const LABEL_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

export const spanLabelSchema = z.object({
  name: z.string().min(1).max(40).regex(LABEL_NAME),
  color: z.string().regex(/^#[0-9a-fA-F]{6}$/),
  key: z.string().length(1).optional(),
  description: z.string().max(500).optional(),
  attributes: z
    .array(z.object({ name: z.string().min(1).max(40), values: z.array(z.string().min(1).max(40)).min(1) }))
    .optional(),
});
export type SpanLabel = z.infer<typeof spanLabelSchema>;

export const labelSchemaSchema = z.object({
  spans: z.array(spanLabelSchema).min(1).max(50),
  relations: z.array(z.object({ name: z.string().min(1).max(40) })).max(50),
});
export type LabelSchema = z.infer<typeof labelSchemaSchema>;

/** The demo project's schema (DESIGN.md, "Default schema"). */
export const DEFAULT_SCHEMA: LabelSchema = {
  spans: [
    { name: 'PERSON', color: '#f4a261', key: '1', description: 'A named person' },
    { name: 'ORG', color: '#8ecae6', key: '2', description: 'An organisation, agency or government body' },
    { name: 'GPE', color: '#90be6d', key: '3', description: 'A country, city or state' },
    { name: 'WEAPON', color: '#e76f51', key: '4', description: 'A weapon system or munition' },
    { name: 'EVENT', color: '#cdb4db', key: '5', description: 'A named event' },
    {
      name: 'CLAIM',
      color: '#ffd166',
      key: '6',
      description: 'A checkable claim',
      attributes: [{ name: 'stance', values: ['asserts', 'denies', 'uncertain'] }],
    },
  ],
  relations: [{ name: 'subject' }, { name: 'object' }, { name: 'source' }],
};
