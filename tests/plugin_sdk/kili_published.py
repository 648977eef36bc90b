"""Plugins Kili publishes, as Kili wrote them (kili-technology/kili-python-sdk at commit
aa76421c, v26.1.5): the recipes of ``recipes/plugins_library`` and the test fixtures of
``tests/unit/services/plugins``. Tests write them into plugin folders unchanged, so a
difference from Kili's hosted runtime shows up as a failing test. Data, not tests."""

from __future__ import annotations

#: recipes/plugins_library/plugin_document.py
DOCUMENT_RECIPE = '''from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    """Custom plugin instance."""

    @staticmethod
    def check_rules_on_label(label: dict):
        """Method for business logic."""
        text_issues_array = []
        mid_issues_array = []

        for bbox in label["jsonResponse"]["JOB_0"]["annotations"]:
            # Rule 1 - Check IBAN starts by FR
            if bbox["categories"][0]["name"] == "IBAN":
                iban = bbox["children"]["TRANSCRIPTION_JOB"]["text"]

                if iban[0:2] != "FR":
                    text_issues_array.append("IBAN number should start by FR")
                    mid_issues_array.append(bbox["mid"])

            # Rule 2 - Check if Currency is in list of fields
            if bbox["categories"][0]["name"] == "CURRENCY":
                currency = bbox["children"]["TRANSCRIPTION_JOB_2"]["text"]

                if currency not in ["DOLLAR", "EURO"]:
                    text_issues_array.append("Authorized currencies are only Euro and Dollar")
                    mid_issues_array.append(bbox["mid"])

        return text_issues_array, mid_issues_array

    def on_submit(self, label: dict, asset_id: str) -> None:
        """Dedicated handler for Submit action."""
        self.logger.info("On submit called")

        text_issues_array, mid_issues_array = self.check_rules_on_label(label)

        project_id = self.project_id

        n_issues = len(text_issues_array)

        if n_issues:
            self.kili.create_issues(
                project_id=project_id,
                label_id_array=[label["id"]] * len(text_issues_array),
                object_mid_array=mid_issues_array,
                text_array=text_issues_array,
            )

        self.kili.add_to_review(asset_ids=[asset_id])

        n_annotations = len(label["jsonResponse"]["JOB_0"]["annotations"])

        accuracy = (1 - n_issues / n_annotations) * 100

        self.kili.update_properties_in_assets(
            asset_ids=[asset_id], json_metadatas=[f"{{'accuracy': {accuracy}}}"]
        )
'''

#: recipes/plugins_library/plugin_image.py
IMAGE_RECIPE = '''"""My custom plugin for bills."""

from typing import Optional

from kili.plugins import PluginCore


def check_rules_on_label(label: dict) -> list[Optional[str]]:
    # custom methods
    print("Custom method - checking number of bboxes")

    counter = 0
    for annotation in label["jsonResponse"]["JOB_0"]["annotations"]:
        if annotation["categories"][0]["name"] == "OBJECT_A":
            counter += 1

    if counter <= 1:
        return []
    return [f"There are too many BBox ({counter}) - Only 1 BBox of Object A accepted"]


class PluginHandler(PluginCore):
    """Custom plugin instance."""

    def on_submit(self, label: dict, asset_id: str) -> None:
        """Dedicated handler for Submit action."""
        self.logger.info("On submit called")

        issues_array = check_rules_on_label(label)

        project_id = self.project_id

        if len(issues_array) > 0:
            print("Creating an issue...")

            self.kili.create_issues(
                project_id=project_id,
                label_id_array=[label["id"]] * len(issues_array),
                text_array=issues_array,
            )

            print("Issue created!")

            self.kili.send_back_to_queue(asset_ids=[asset_id])
'''

#: recipes/plugins_library/plugin_consensus.py
CONSENSUS_RECIPE = '''from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    """Custom plugin instance."""

    def aggregate_object_detection_label(self, object_job_key, labels_array):
        json_response = {}

        for key in object_job_key:
            job_annotation = []
            for label in labels_array:
                if key in label["jsonResponse"]:
                    for annotation in label["jsonResponse"][key]["annotations"]:
                        job_annotation.append(annotation)
            json_response.update({key: {"annotations": job_annotation}})

        return json_response

    def on_submit(self, label: dict, asset_id: str) -> None:
        """Dedicated handler for Submit action."""
        project_id = self.project_id

        project_info = self.kili.projects(
            project_id=project_id, fields=["minConsensusSize", "jsonInterface"]
        )[0]

        json_interface = project_info["jsonInterface"]
        min_consensus_size = project_info["minConsensusSize"]

        object_job_key = [
            k for k, v in json_interface["jobs"].items() if v["mlTask"] == "OBJECT_DETECTION"
        ]

        labels_array = self.kili.labels(
            project_id=project_id,
            asset_id=asset_id,
            type_in=["DEFAULT"],
            fields=[
                "id",
                "jsonResponse",
                "isLatestLabelForUser",
            ],
        )

        latest_labels = list(filter(lambda x: x["isLatestLabelForUser"] is True, labels_array))

        if len(latest_labels) == min_consensus_size:
            json_response_array = self.aggregate_object_detection_label(
                object_job_key, latest_labels
            )
            self.kili.append_labels(
                asset_id_array=[asset_id], json_response_array=[json_response_array]
            )
'''

#: tests/unit/services/plugins/plugin_folder/main.py
FOLDER_FIXTURE_MAIN = '''from kili.plugins import PluginCore

from .sub_folder.helpers import custom_function


class PluginHandler(PluginCore):
    def on_submit(self, label: dict, asset_id: str) -> None:
        custom_function()
'''

#: tests/unit/services/plugins/plugin_folder/sub_folder/helpers.py
FOLDER_FIXTURE_HELPERS = '''def custom_function():
    pass
'''

#: tests/unit/services/plugins/plugin_folder/requirements.txt
FOLDER_FIXTURE_REQUIREMENTS = '''scikit-learn
'''

#: tests/unit/services/plugins/test_plugins/handlers_correctly_implemented_events.py
ON_EVENT_FIXTURE = '''from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_event(self, payload: dict) -> None:
        super().on_event(payload=payload)
'''

#: tests/unit/services/plugins/test_plugins/handlers_correctly_implemented_events_handlers.py
ON_EVENT_AND_HANDLERS_FIXTURE = '''from kili.plugins import PluginCore


class PluginHandler(PluginCore):
    def on_event(self, payload: dict) -> None:
        super().on_event(payload=payload)

    def on_submit(self, label: dict, asset_id: str) -> None:
        super().on_submit(label=label, asset_id=asset_id)

    def on_review(self, label: dict, asset_id: str) -> None:
        super().on_review(label=label, asset_id=asset_id)
'''
