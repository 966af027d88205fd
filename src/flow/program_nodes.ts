/**
 * Node types a program defines (`openRuntime({ nodeTypes })`): checked once
 * when the runtime opens, then used by name in its flows like the built-ins,
 * in-process, with the program's permissions.
 *
 * @module
 */
import { isModulePath, isModuleSpecifier } from "../loader.ts";
import { isNodeType, type NodeType } from "./node.ts";
import { builtinNodes } from "./nodes.ts";

/** Node types by name, as a runtime holds them. */
export type ProgramNodeTypes = ReadonlyMap<string, NodeType<never>>;

/**
 * `nodeTypes` (the option of `openRuntime`) as a map, or a `TypeError`
 * saying which entry is wrong and how to fix it: a name of a built-in node
 * type, a name that would be read as a module path or specifier, or a value
 * that `defineNode` did not make.
 */
export function programNodeTypes(nodeTypes: unknown): ProgramNodeTypes {
  const what = "Cannot open runtime: option nodeTypes";
  if (typeof nodeTypes !== "object" || nodeTypes === null || Array.isArray(nodeTypes)) {
    throw new TypeError(
      `${what} must be an object of node types by name, like { "acme.greet": defineNode({ optionsSchema, run }) }`,
    );
  }
  const types = new Map<string, NodeType<never>>();
  for (const [name, type] of Object.entries(nodeTypes)) {
    const at = `${what}[${JSON.stringify(name)}]`;
    if (name.trim() === "" || name !== name.trim()) {
      throw new TypeError(
        `${at}: a node type's name must not be empty or start or end with spaces`,
      );
    }
    if (builtinNodes.has(name)) {
      throw new TypeError(
        `${at}: "${name}" is a built-in node type, which a flow's type: "${name}" always means; give yours a name of its own, such as "app.${name}"`,
      );
    }
    if (isModulePath(name) || isModuleSpecifier(name)) {
      throw new TypeError(
        `${at}: a flow would read type: "${name}" as a module ${
          isModulePath(name) ? "path" : "specifier"
        }; name it without a leading ./, ../ or / and without a scheme like jsr:, such as "app.greet"`,
      );
    }
    if (!isNodeType(type)) {
      throw new TypeError(
        `${at}: expected a node type made by defineNode({ optionsSchema, run }), got ${
          type === null ? "null" : Array.isArray(type) ? "an array" : typeof type
        }`,
      );
    }
    types.set(name, type as NodeType<never>);
  }
  return types;
}
