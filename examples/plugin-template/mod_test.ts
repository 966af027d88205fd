import { openStore } from "@flowstate/core";
import { testStore } from "@flowstate/core/testing";
import template from "./mod.ts";

testStore("template", ({ clock }) => openStore({ plugin: template }, { clock }));
