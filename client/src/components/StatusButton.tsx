import { Show } from 'solid-js';
import type { DocumentStatus } from '@spanwise/shared/api';
import { STATUS_TEXT } from '../lib/labels.ts';

export function StatusButton(props: {
  status: DocumentStatus | undefined;
  saving: boolean;
  error: string | null;
  onChange: (status: DocumentStatus) => void;
}) {
  return (
    <Show when={props.status}>
      {(status) => (
        <span class="field-inline">
          <span class={`status-pill status-${status()}`}>{STATUS_TEXT[status()]}</span>
          <button
            type="button"
            disabled={props.saving}
            onClick={() => props.onChange(status() === 'done' ? 'in_progress' : 'done')}
          >
            {status() === 'done' ? 'Reopen' : 'Mark done'}
          </button>
          <Show when={props.error}>
            <span role="alert" class="error">
              {props.error}
            </span>
          </Show>
        </span>
      )}
    </Show>
  );
}
