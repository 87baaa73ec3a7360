"""Joining a structure that exists: the attachment requests its gestionnaire principal decides
(« Approbations »), and the users they may detach."""
