"use client";

import {
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescOneof,
  type JsonObject,
  type JsonValue,
  ScalarType,
} from "@bufbuild/protobuf";
import type { ReactNode } from "react";
import { commentOf } from "../lib/explorer.ts";

/**
 * A form for a request message, generated from its descriptor and editing the request's JSON (the
 * same value as the JSON beside it): scalars with their type and range, enums as choices, nested
 * and optional messages, repeated fields, maps, oneofs, Timestamp as a date and time and the other
 * well-known types as their JSON; the
 * field's comment from the contract as help text when the service's descriptors carry comments.
 */
export function RequestForm({
  message,
  value,
  onChange,
}: {
  message: DescMessage;
  value: JsonObject;
  onChange: (value: JsonObject) => void;
}) {
  return (
    <fieldset className="request-form" data-form={message.typeName}>
      <legend className="visually-hidden">{message.typeName}</legend>
      <Members message={message} value={value} onChange={onChange} path={message.typeName} />
    </fieldset>
  );
}

function Members({
  message,
  value,
  onChange,
  path,
}: {
  message: DescMessage;
  value: JsonObject;
  onChange: (value: JsonObject) => void;
  path: string;
}) {
  const set = (key: string, next: JsonValue | undefined) => {
    const copy = { ...value };
    if (next === undefined) delete copy[key];
    else copy[key] = next;
    onChange(copy);
  };
  return (
    <>
      {message.members.map((member) =>
        member.kind === "oneof" ? (
          <OneofInput
            key={member.name}
            oneof={member}
            value={value}
            onChange={onChange}
            path={`${path}.${member.name}`}
          />
        ) : (
          <FieldInput
            key={member.name}
            field={member}
            value={value[member.jsonName]}
            onChange={(next) => set(member.jsonName, next)}
            path={`${path}.${member.name}`}
          />
        ),
      )}
    </>
  );
}

function OneofInput({
  oneof,
  value,
  onChange,
  path,
}: {
  oneof: DescOneof;
  value: JsonObject;
  onChange: (value: JsonObject) => void;
  path: string;
}) {
  const chosen = oneof.fields.find((field) => value[field.jsonName] !== undefined);
  const id = idOf(path);
  const choose = (name: string) => {
    const copy = { ...value };
    for (const field of oneof.fields) delete copy[field.jsonName];
    const field = oneof.fields.find((candidate) => candidate.name === name);
    if (field) copy[field.jsonName] = zeroOf(field);
    onChange(copy);
  };
  return (
    <div className="field oneof">
      <label htmlFor={id}>
        {oneof.name} <span className="muted small-text">one of</span>
      </label>
      <select id={id} value={chosen?.name ?? ""} onChange={(event) => choose(event.target.value)}>
        <option value="">(none)</option>
        {oneof.fields.map((field) => (
          <option key={field.name} value={field.name}>
            {field.name}
          </option>
        ))}
      </select>
      {chosen && (
        <FieldInput
          field={chosen}
          value={value[chosen.jsonName]}
          onChange={(next) => onChange({ ...value, [chosen.jsonName]: next ?? zeroOf(chosen) })}
          path={`${path}.${chosen.name}`}
        />
      )}
    </div>
  );
}

function FieldInput({
  field,
  value,
  onChange,
  path,
}: {
  field: DescField;
  value: JsonValue | undefined;
  onChange: (value: JsonValue | undefined) => void;
  path: string;
}) {
  const id = idOf(path);
  const help = commentOf(field);
  const label = (
    <label htmlFor={id}>
      {field.name} <span className="muted small-text">{typeLabel(field)}</span>
    </label>
  );
  const helpText = help ? (
    <p className="muted small-text help" id={`${id}-help`}>
      {help}
    </p>
  ) : null;
  const described = help ? `${id}-help` : undefined;
  if (field.fieldKind === "list") {
    const items = Array.isArray(value) ? value : [];
    const setItem = (index: number, next: JsonValue | undefined) =>
      onChange(items.map((item, at) => (at === index ? (next ?? null) : item)));
    return (
      <div className="field repeated" data-field={field.name}>
        <FieldHeading field={field} help={helpText} />
        <ol>
          {items.map((item, index) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: list items are known by their place
            <li key={index}>
              <ValueInput
                kind={field.listKind}
                scalar={field.scalar}
                enumDesc={field.enum}
                message={field.message}
                value={item}
                onChange={(next) => setItem(index, next)}
                id={`${id}-${index}`}
                label={`${field.name} ${index + 1}`}
              />
              <button
                type="button"
                className="link-button"
                onClick={() => onChange(items.filter((_, at) => at !== index))}
              >
                Remove {field.name} {index + 1}
              </button>
            </li>
          ))}
        </ol>
        <button
          type="button"
          className="link-button"
          onClick={() => onChange([...items, zeroOfKind(field.listKind, field.scalar, field.enum)])}
        >
          Add {field.name}
        </button>
      </div>
    );
  }
  if (field.fieldKind === "map") {
    const entries = Object.entries(
      value && typeof value === "object" && !Array.isArray(value) ? value : {},
    );
    const rebuild = (next: [string, JsonValue][]) => onChange(Object.fromEntries(next));
    return (
      <div className="field map" data-field={field.name}>
        <FieldHeading field={field} help={helpText} />
        <ul>
          {entries.map(([key, item], index) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: a key being typed changes at each stroke
            <li key={index}>
              <input
                aria-label={`${field.name} key ${index + 1}`}
                value={key}
                onChange={(event) =>
                  rebuild(
                    entries.map((entry, at) =>
                      at === index ? [event.target.value, entry[1]] : entry,
                    ),
                  )
                }
              />
              <ValueInput
                kind={field.mapKind}
                scalar={field.scalar}
                enumDesc={field.enum}
                message={field.message}
                value={item}
                onChange={(next) =>
                  rebuild(entries.map((entry, at) => (at === index ? [key, next ?? null] : entry)))
                }
                id={`${id}-${index}`}
                label={`${field.name} value ${index + 1}`}
              />
            </li>
          ))}
        </ul>
        <button
          type="button"
          className="link-button"
          onClick={() =>
            rebuild([
              ...entries,
              [`key${entries.length + 1}`, zeroOfKind(field.mapKind, field.scalar, field.enum)],
            ])
          }
        >
          Add {field.name} entry
        </button>
      </div>
    );
  }
  if (field.fieldKind === "message" && !writtenAsValue(field.message)) {
    const present = value !== undefined && value !== null;
    return (
      <div className="field message" data-field={field.name}>
        <FieldHeading field={field} help={helpText} />
        {present && typeof value === "object" && !Array.isArray(value) ? (
          <div className="nested">
            <Members
              message={field.message}
              value={value}
              onChange={(next) => onChange(next)}
              path={path}
            />
            <button type="button" className="link-button" onClick={() => onChange(undefined)}>
              Remove {field.name}
            </button>
          </div>
        ) : (
          <button type="button" className="link-button" onClick={() => onChange({})}>
            Set {field.name}
          </button>
        )}
      </div>
    );
  }
  return (
    <div className="field" data-field={field.name}>
      {label}
      {helpText}
      <ValueInput
        kind={field.fieldKind}
        scalar={field.scalar}
        enumDesc={field.enum}
        message={field.message}
        value={value}
        onChange={onChange}
        id={id}
        describedBy={described}
      />
    </div>
  );
}

/** The name and type of a field that has no single input to label, and its help. */
function FieldHeading({ field, help }: { field: DescField; help: ReactNode }) {
  return (
    <>
      <span className="field-label">
        {field.name} <span className="muted small-text">{typeLabel(field)}</span>
      </span>
      {help}
    </>
  );
}

/** One value: a scalar, an enum, a Timestamp, or a message (nested members). */
function ValueInput({
  kind,
  scalar,
  enumDesc,
  message,
  value,
  onChange,
  id,
  label,
  describedBy,
}: {
  kind: "scalar" | "enum" | "message";
  scalar: ScalarType | undefined;
  enumDesc: DescEnum | undefined;
  message: DescMessage | undefined;
  value: JsonValue | undefined;
  onChange: (value: JsonValue | undefined) => void;
  id: string;
  label?: string;
  describedBy?: string;
}) {
  const common = { id, "aria-label": label, "aria-describedby": describedBy };
  if (kind === "enum" && enumDesc) {
    return (
      <select
        {...common}
        value={typeof value === "string" ? value : (enumDesc.values[0]?.name ?? "")}
        onChange={(event) => onChange(event.target.value)}
      >
        {enumDesc.values.map((item) => (
          <option key={item.name} value={item.name}>
            {item.name}
          </option>
        ))}
      </select>
    );
  }
  if (kind === "message" && message) {
    if (isTimestamp(message)) {
      // RFC 3339 in UTC, as protobuf's JSON writes a Timestamp; the input shows it to the minute.
      const shown = typeof value === "string" ? value.slice(0, 16) : "";
      return (
        <input
          {...common}
          type="datetime-local"
          value={shown}
          onChange={(event) =>
            onChange(event.target.value === "" ? undefined : `${event.target.value}:00Z`)
          }
        />
      );
    }
    if (writtenAsValue(message)) {
      // Duration, FieldMask, Struct, Any, the wrappers...: their JSON, typed as such (a bare word,
      // such as 1.5s, is taken as a string).
      return (
        <input
          {...common}
          value={
            value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value)
          }
          onChange={(event) =>
            onChange(event.target.value === "" ? undefined : jsonOrText(event.target.value))
          }
        />
      );
    }
    return (
      <div className="nested">
        <Members
          message={message}
          value={value && typeof value === "object" && !Array.isArray(value) ? value : {}}
          onChange={onChange}
          path={id}
        />
      </div>
    );
  }
  if (scalar === ScalarType.BOOL) {
    return (
      <input
        {...common}
        type="checkbox"
        checked={value === true}
        onChange={(event) => onChange(event.target.checked)}
      />
    );
  }
  const numeric =
    scalar !== undefined && scalar !== ScalarType.STRING && scalar !== ScalarType.BYTES;
  const wide = scalar !== undefined && is64Bit(scalar);
  return (
    <input
      {...common}
      inputMode={numeric ? (isFloat(scalar) ? "decimal" : "numeric") : undefined}
      value={value === undefined || value === null ? "" : String(value)}
      onChange={(event) => {
        const text = event.target.value;
        // 64-bit integers are strings in JSON; other numbers stay numbers once they read as one.
        if (!numeric || wide) onChange(text);
        else onChange(text !== "" && Number.isFinite(Number(text)) ? Number(text) : text);
      }}
    />
  );
}

function idOf(path: string): string {
  return `field-${path.replaceAll(/[^\w-]/g, "-")}`;
}

function isTimestamp(message: DescMessage): boolean {
  return message.typeName === "google.protobuf.Timestamp";
}

/** Well-known types whose JSON is a value of its own, not an object of their fields. */
function writtenAsValue(message: DescMessage): boolean {
  return (
    message.typeName.startsWith("google.protobuf.") && message.typeName !== "google.protobuf.Empty"
  );
}

function jsonOrText(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

function is64Bit(scalar: ScalarType): boolean {
  return [
    ScalarType.INT64,
    ScalarType.UINT64,
    ScalarType.FIXED64,
    ScalarType.SFIXED64,
    ScalarType.SINT64,
  ].includes(scalar);
}

function isFloat(scalar: ScalarType | undefined): boolean {
  return scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT;
}

const ranges: Partial<Record<ScalarType, string>> = {
  [ScalarType.INT32]: "-2147483648 to 2147483647",
  [ScalarType.SINT32]: "-2147483648 to 2147483647",
  [ScalarType.SFIXED32]: "-2147483648 to 2147483647",
  [ScalarType.UINT32]: "0 to 4294967295",
  [ScalarType.FIXED32]: "0 to 4294967295",
  [ScalarType.INT64]: "64-bit, as a string",
  [ScalarType.SINT64]: "64-bit, as a string",
  [ScalarType.SFIXED64]: "64-bit, as a string",
  [ScalarType.UINT64]: "unsigned 64-bit, as a string",
  [ScalarType.FIXED64]: "unsigned 64-bit, as a string",
  [ScalarType.BYTES]: "base64",
};

/** The field's type as the form shows it: `int32 (-2147483648 to 2147483647)`, `repeated User`. */
function typeLabel(field: DescField): string {
  const base =
    field.fieldKind === "map"
      ? `map<${scalarName(field.mapKey)}, ${field.mapKind === "scalar" ? scalarName(field.scalar) : field.mapKind === "enum" ? field.enum.name : field.message.name}>`
      : field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")
        ? (field.enum?.name ?? "enum")
        : field.fieldKind === "message" ||
            (field.fieldKind === "list" && field.listKind === "message")
          ? (field.message?.name ?? "message")
          : scalarName(field.scalar);
  const range = field.scalar !== undefined ? ranges[field.scalar] : undefined;
  const prefix =
    field.fieldKind === "list" ? "repeated " : field.proto.proto3Optional ? "optional " : "";
  return `${prefix}${base}${range ? ` (${range})` : ""}`;
}

function scalarName(scalar: ScalarType | undefined): string {
  return scalar === undefined ? "?" : ScalarType[scalar].toLowerCase();
}

function zeroOfKind(
  kind: "scalar" | "enum" | "message",
  scalar: ScalarType | undefined,
  enumDesc: DescEnum | undefined,
): JsonValue {
  if (kind === "enum") return enumDesc?.values[0]?.name ?? 0;
  if (kind === "message") return {};
  if (scalar === ScalarType.BOOL) return false;
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) return "";
  return scalar !== undefined && is64Bit(scalar) ? "0" : 0;
}

function zeroOf(field: DescField): JsonValue {
  if (field.fieldKind === "list") return [];
  if (field.fieldKind === "map") return {};
  if (field.fieldKind === "message") return writtenAsValue(field.message) ? "" : {};
  return zeroOfKind(field.fieldKind, field.scalar, field.enum);
}
